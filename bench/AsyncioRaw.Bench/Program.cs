using System.Diagnostics;
using AsyncioRaw;
using AsyncioRaw.Bench;

PythonRuntime.Initialize();
BareInterop.Register();
using var globals = Py.Run("def add1_sync(x):\n    return x + 1\n");
using var add1 = globals["add1_sync"];
nint fn = add1.DangerousGetHandle();
bool vectorcall = PythonLibrary.Version >= new Version(3, 11);

static double Median(Func<double> run, int reps = 5) { run(); var xs = Enumerable.Range(0, reps).Select(_ => run()).OrderBy(x => x).ToArray(); return xs[reps / 2]; }

unsafe double BareCall(int n)
{
    long sum = 0; var sw = Stopwatch.StartNew();
    nint* args = stackalloc nint[2];
    for (int i = 0; i < n; i++)
    {
        args[1] = BareInterop.PyLong_FromLongLong(i);
        nint r = vectorcall ? BareInterop.PyObject_Vectorcall(fn, args + 1, 1 | unchecked((nuint)(1UL << 63)), 0) : BareInterop.PyObject_VectorcallDict(fn, args + 1, 1 | unchecked((nuint)(1UL << 63)), 0);
        BareInterop.Py_DecRef(args[1]);
        sum += BareInterop.PyLong_AsLongLong(r);
        BareInterop.Py_DecRef(r);
    }
    sw.Stop();
    if (sum != (long)n * (n + 1) / 2) throw new Exception("bad sum");
    return sw.Elapsed.TotalMicroseconds / n;
}
double OurCall(int n)
{
    long sum = 0; var sw = Stopwatch.StartNew();
    for (int i = 0; i < n; i++) sum += add1.Call<long, long>(i);
    sw.Stop();
    if (sum != (long)n * (n + 1) / 2) throw new Exception("bad sum");
    return sw.Elapsed.TotalMicroseconds / n;
}
double BareGil(int n)
{
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < n; i++) BareInterop.PyGILState_Release(BareInterop.PyGILState_Ensure());
    return sw.Elapsed.TotalMicroseconds / n;
}
double OurGil(int n)
{
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < n; i++) { using var g = Gil.Acquire(); }
    return sw.Elapsed.TotalMicroseconds / n;
}
double bareCall, ourCall;
using (Gil.Acquire()) { bareCall = Median(() => BareCall(1_000_000)); ourCall = Median(() => OurCall(1_000_000)); }
Console.WriteLine($"S6 call (GIL held): bare {bareCall:F4} us, ours {ourCall:F4} us, ratio {ourCall / bareCall:F2}");
// The bare pair on a thread with a kept thread state (the main thread's): Ensure restores it.
double bareGil = 0, ourGil = 0;
var t = new Thread(() => { using (Gil.Acquire()) { } bareGil = Median(() => BareGil(100_000)); ourGil = Median(() => OurGil(100_000)); });
t.Start(); t.Join();
Console.WriteLine($"S6 GIL pair: bare {bareGil:F4} us, ours {ourGil:F4} us, ratio {ourGil / bareGil:F2}");
