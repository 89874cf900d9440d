using System.Diagnostics;
using AsyncioRaw;

namespace AsyncioRaw.Bench;

internal static unsafe class SyncCalls
{
    private static readonly nuint Offset = unchecked((nuint)(1UL << 63));

    /// <summary>The floor: PyObject_CallOneArg's vectorcall plus the integer conversions, through bare P/Invoke.</summary>
    internal static (double, long) Bare(PyObject function, int n)
    {
        nint fn = function.DangerousGetHandle();
        bool vectorcall = PythonLibrary.Version >= new Version(3, 11);
        long sum = 0;
        nint* args = stackalloc nint[2];
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            args[1] = BareInterop.PyLong_FromLongLong(i);
            nint r = vectorcall ? BareInterop.PyObject_Vectorcall(fn, args + 1, 1 | Offset, 0) : BareInterop.PyObject_VectorcallDict(fn, args + 1, 1 | Offset, 0);
            BareInterop.Py_DecRef(args[1]);
            sum += BareInterop.PyLong_AsLongLong(r);
            BareInterop.Py_DecRef(r);
        }
        return (sw.Elapsed.TotalSeconds, sum);
    }

    internal static (double, long) Ours(PyObject function, int n)
    {
        long sum = 0;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) sum += function.Call<long, long>(i);
        return (sw.Elapsed.TotalSeconds, sum);
    }

    /// <summary>A bare PyGILState_Ensure/Release pair, on a thread that already has a thread state.</summary>
    internal static (double, long) BareGilPair(int n)
    {
        using (Gil.Acquire()) { } // make sure this thread has its (kept) thread state
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) BareInterop.PyGILState_Release(BareInterop.PyGILState_Ensure());
        return (sw.Elapsed.TotalSeconds, n);
    }

    internal static (double, long) OurGilPair(int n)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) { using var gil = Gil.Acquire(); }
        return (sw.Elapsed.TotalSeconds, n);
    }
}
