using System.Diagnostics;
using AsyncioRaw;

namespace AsyncioRaw.Hostile;

/// <summary>Attacks on PyConvert: data that refers to itself or nests deeper than any stack, and
/// strings large enough that a pooled buffer would keep hundreds of megabytes.</summary>
internal static class ConversionAttacks
{
    private const string Builders = """
        def self_list():
            x = [1, 'a']
            x.append(x)
            return x

        def self_dict():
            d = {'k': 1}
            d['me'] = d
            return d

        def indirect():
            a = []
            b = {'a': a}
            a.append((1, b))
            return a

        def deep(n):
            x = []
            for _ in range(n):
                x = [x]
            return x

        def deep_dict(n):
            x = {}
            for _ in range(n):
                x = {'x': x}
            return x

        def shared():
            leaf = [1, 2]
            return [leaf, leaf, {'l': leaf}]

        def probe(f, x):
            try:
                f(x)
                return 'ok'
            except BaseException as e:
                kinds = [k.__name__ for k in type(e).__mro__]
                return ','.join(k for k in ('RecursionError', 'ValueError', 'Exception') if k in kinds) + ':' + str(e)[:120]
        """;

    private static PyObject Build(PyObject globals, string builder, params object?[] args)
    {
        using var f = globals[builder];
        return f.Call(args);
    }

    [Attack("conversion.toclr_cycles")]
    private static void ToClrCycles()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Builders);
        foreach (var name in new[] { "self_list", "self_dict", "indirect" })
        {
            using var data = Build(g, name);
            Outcome.Try(name, () => data.ToClr());
        }
        using var shared = Build(g, "shared");
        // The same list twice is not a cycle: it converts.
        Outcome.Report("shared", shared.ToClr() is List<object?> { Count: 3 } ? "converted" : "wrong");
    }

    [Attack("conversion.toclr_deep")]
    private static void ToClrDeep()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Builders);
        foreach (var name in new[] { "deep", "deep_dict" })
        {
            using var data = Build(g, name, 100_000);
            Outcome.Try(name, () => PyConvert.ToClr(data));
        }
        using var fine = Build(g, "deep", 500);
        Outcome.Try("deep500", () => fine.As<List<object?>>());
    }

    [Attack("conversion.toclr_deep_on_small_stack")]
    private static void ToClrDeepOnSmallStack()
    {
        // A thread with a small stack: the depth limit alone is not enough there.
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Builders);
        using var data = Build(g, "deep", 900);
        var thread = new Thread(() => Outcome.Try("deep900", () => PyConvert.ToClr(data)), maxStackSize: 160 * 1024);
        thread.Start();
        thread.Join();
    }

    [Attack("conversion.function_args")]
    private static void FunctionArgs()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Builders);
        using var f = PyFunction.Create("takes", args => args.Length);
        using var probe = g["probe"];
        foreach (var (name, args) in new (string, object?[])[] { ("self_list", []), ("self_dict", []), ("deep", [100_000]) })
        {
            using var data = Build(g, name, args);
            Outcome.Report(name, probe.Call<PyObject, PyObject, string>(f, data));
        }
    }

    [Attack("conversion.function_results")]
    private static void FunctionResults()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        using var g = Py.Run(Builders);
        var cyclic = new List<object?> { 1 };
        cyclic.Add(cyclic);
        object deep = new List<object?>();
        for (int i = 0; i < 100_000; i++) deep = new List<object?> { deep };
        using var probe = g["probe"];
        using var returnsCycle = PyFunction.Create("cycle", _ => cyclic);
        using var returnsDeep = PyFunction.Create("deep", _ => deep);
        Outcome.Report("cycle", probe.Call<PyObject, object?, string>(returnsCycle, null));
        Outcome.Report("deep", probe.Call<PyObject, object?, string>(returnsDeep, null));
    }

    [Attack("conversion.topython")]
    private static void ToPython()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        var list = new List<object?> { 1 };
        list.Add(list);
        Outcome.Try("self_list", () => PyConvert.ToPython(list).Dispose());
        var dict = new Dictionary<object, object?> { ["k"] = 1 };
        dict["me"] = dict;
        Outcome.Try("self_dict", () => PyConvert.ToPython(dict).Dispose());
        var array = new object?[2];
        array[0] = Tuple.Create<object?>(array);
        Outcome.Try("through_tuple", () => PyConvert.ToPython(array).Dispose());
        object deep = new List<object?>();
        for (int i = 0; i < 100_000; i++) deep = new List<object?> { deep };
        Outcome.Try("deep", () => PyConvert.ToPython(deep).Dispose());
        var leaf = new List<object?> { 1, 2 };
        Outcome.Try("shared", () => PyConvert.ToPython(new List<object?> { leaf, leaf }).Dispose());
        Outcome.Try("setitem", () =>
        {
            using var d = Py.Eval("{}");
            d.SetItem("x", list);
        });
    }

    [Attack("conversion.large_string_rss")]
    private static void LargeStringRss()
    {
        PythonRuntime.Initialize(installSignalHandlers: false);
        const int Chars = 300_000_000;
        // The same .NET string made and dropped without converting it is the control: what
        // remains above it after a conversion is what the conversion kept.
        long control = RssAfter(() => { var s = new string('x', Chars); GC.KeepAlive(s); });
        long converted = RssAfter(() =>
        {
            var s = new string('x', Chars);
            // With the GIL held, disposing frees the str at once (without, it is queued).
            using var gil = Gil.Acquire();
            using var py = PyConvert.ToPython(s);
            GC.KeepAlive(s);
        });
        Outcome.Report("retained_mb", ((converted - control) / (1024 * 1024)).ToString());
        long nonAscii = RssAfter(() =>
        {
            var s = new string('\u00e9', Chars / 3) + "\ud83d\ude00" + "\ud800";
            using var gil = Gil.Acquire();
            using var py = PyConvert.ToPython(s);
            Outcome.Report("roundtrip", py.As<string>() == s ? "same" : "different");
        });
        Outcome.Report("retained_nonascii_mb", ((nonAscii - control) / (1024 * 1024)).ToString());
    }

    private static long RssAfter(Action work)
    {
        work();
        for (int i = 0; i < 3; i++)
        {
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return self.WorkingSet64;
    }
}
