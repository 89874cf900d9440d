// The hostile suite's child process: one attack per process, chosen by name, so that an attack
// that crashes or hangs the process cannot hide the others. The NUnit side (tests/AsyncioRaw.Tests/
// Hostile) starts it, bounds it in time, and checks the exit status and what it printed.
using System.Reflection;
using AsyncioRaw.Hostile;

var attacks = typeof(AttackAttribute).Assembly.GetTypes()
    .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic))
    .Select(m => (Method: m, Attribute: m.GetCustomAttribute<AttackAttribute>()))
    .Where(a => a.Attribute is not null)
    .ToDictionary(a => a.Attribute!.Name, a => a.Method);

if (args.Length == 0 || !attacks.TryGetValue(args[0], out var attack))
{
    Console.Error.WriteLine($"usage: AsyncioRaw.Hostile <attack>; attacks: {string.Join(", ", attacks.Keys.Order())}");
    return 2;
}
try
{
    var result = attack.Invoke(null, attack.GetParameters().Length == 0 ? null : [args[1..]]);
    if (result is Task task) task.GetAwaiter().GetResult();
    Console.Out.Flush();
    return result is int code ? code : 0;
}
catch (TargetInvocationException e) when (e.InnerException is { } inner)
{
    Console.WriteLine($"unhandled={inner.GetType().FullName}: {inner.Message}");
    Console.Error.WriteLine(inner);
    return 1;
}
