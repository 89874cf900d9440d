namespace AsyncioRaw.Tests;

[TestFixture]
public class ExceptionTests
{
    private static PythonException Raise(string source)
    {
        using var globals = Py.Run(source);
        using var f = globals["f"];
        return Assert.Throws(Is.InstanceOf<PythonException>(), () => f.Call().Dispose()) as PythonException
            ?? throw new AssertionException("not a PythonException");
    }

    [Test]
    public void Type_message_module_and_traceback_are_carried()
    {
        var e = Raise("def inner():\n    raise ValueError('bad value')\ndef f():\n    inner()\n");
        Assert.That(e.PythonTypeName, Is.EqualTo("ValueError"));
        Assert.That(e.PythonTypeModule, Is.EqualTo("builtins"));
        Assert.That(e.PythonMessage, Is.EqualTo("bad value"));
        Assert.That(e.Message, Is.EqualTo("ValueError: bad value"));
        Assert.That(e.PythonTraceback, Does.StartWith("Traceback (most recent call last):"));
        Assert.That(e.PythonTraceback, Does.Contain("line 4, in f").And.Contain("line 2, in inner"));
        Assert.That(e.StackTrace, Does.Contain("in inner"));
        using var type = e.Value.GetAttr("__class__");
        Assert.That(type.GetAttr("__name__").As<string>(), Is.EqualTo("ValueError"));
    }

    [Test]
    public void Qualified_names_of_nested_and_module_types()
    {
        var e = Raise("class Outer:\n    class Failure(Exception): pass\ndef f():\n    raise Outer.Failure('x')\n");
        Assert.That(e.PythonTypeName, Is.EqualTo("Outer.Failure"));
        var e2 = Raise("import json\ndef f():\n    json.loads('{')\n");
        Assert.That(e2.PythonTypeName, Is.EqualTo("JSONDecodeError"));
        Assert.That(e2.PythonTypeModule, Is.EqualTo("json.decoder"));
        // Frames from real files carry their source lines.
        Assert.That(e2.PythonTraceback, Does.Contain("json").And.Contain("decoder.py").And.Contain("return _default_decoder.decode(s)"));
    }

    [Test]
    public void Explicit_cause_becomes_InnerException()
    {
        var e = Raise("def f():\n    try:\n        {}['k']\n    except KeyError as k:\n        raise RuntimeError('wrapped') from k\n");
        Assert.That(e.PythonTypeName, Is.EqualTo("RuntimeError"));
        var inner = e.InnerException as PythonException;
        Assert.That(inner, Is.Not.Null);
        Assert.That(inner!.PythonTypeName, Is.EqualTo("KeyError"));
        Assert.That(inner.PythonMessage, Is.EqualTo("'k'"));
    }

    [Test]
    public void Implicit_context_becomes_InnerException_unless_suppressed()
    {
        var e = Raise("def f():\n    try:\n        1/0\n    except ZeroDivisionError:\n        raise LookupError('during handling')\n");
        Assert.That((e.InnerException as PythonException)?.PythonTypeName, Is.EqualTo("ZeroDivisionError"));
        var suppressed = Raise("def f():\n    try:\n        1/0\n    except ZeroDivisionError:\n        raise LookupError('clean') from None\n");
        Assert.That(suppressed.InnerException, Is.Null);
    }

    [Test]
    public void Non_ASCII_messages_survive()
    {
        var e = Raise("def f():\n    raise ValueError('héllo ✓ 日本 🐍')\n");
        Assert.That(e.PythonMessage, Is.EqualTo("héllo ✓ 日本 🐍"));
    }

    [Test]
    public void Special_exceptions_keep_their_identity()
    {
        Assert.That(Raise("def f():\n    raise KeyboardInterrupt\n"), Is.InstanceOf<PythonKeyboardInterruptException>());
        var exit = Raise("def f():\n    raise SystemExit(7)\n");
        Assert.That(exit, Is.InstanceOf<PythonSystemExitException>());
        Assert.That(((PythonSystemExitException)exit).Code, Is.EqualTo(7));
        var stop = Raise("def f():\n    raise StopIteration(42)\n");
        Assert.That(stop, Is.InstanceOf<PythonStopIterationException>());
        Assert.That(((PythonStopIterationException)stop).StopValue.As<long>(), Is.EqualTo(42));
        Assert.That(Raise("def f():\n    raise MemoryError('synthetic')\n"), Is.InstanceOf<PythonMemoryErrorException>());
    }

    [Test]
    public unsafe void Error_return_without_exception_is_a_SystemError()
    {
        Exception e;
        using (Gil.Acquire()) e = PythonException.Fetch();
        Assert.That(e, Is.InstanceOf<PythonException>());
        Assert.That(((PythonException)e).PythonTypeName, Is.EqualTo("SystemError"));
        Assert.That(e.Message, Does.Contain("error return without exception set"));
    }

    [Test]
    public void A_Python_exception_raised_back_into_Python_is_the_same_object()
    {
        var e = Raise("def f():\n    raise ValueError('orig')\n");
        using var globals = Py.Run("def catch(call):\n    try:\n        call()\n    except BaseException as e:\n        return e\n");
        using var raiser = Py.Eval("lambda exc: (_ for _ in ()).throw(exc)");
        using var catchIt = globals["catch"];
        using var caught = catchIt.Call(Py.Eval("lambda: None"));
        Assert.That(caught.IsNone);
        using var same = ExceptionBridge.ToPython(e);
        Assert.That(same.DangerousGetHandle(), Is.EqualTo(e.Value.DangerousGetHandle()));
    }

    [Test]
    public void A_NET_exception_crossing_into_Python_and_back_is_the_same_object()
    {
        var original = new InvalidOperationException("from .NET");
        using var pyExc = ExceptionBridge.ToPython(original);
        Assert.That(pyExc.TypeName, Is.EqualTo("DotNetError"));
        Assert.That(pyExc.GetAttr("dotnet_type").As<string>(), Is.EqualTo("System.InvalidOperationException"));
        Assert.That(pyExc.ToString(), Is.EqualTo("System.InvalidOperationException: from .NET"));
        using var globals = Py.Run("def rethrow(e):\n    raise e\n");
        using var rethrow = globals["rethrow"];
        var back = Assert.Throws<InvalidOperationException>(() => rethrow.Call(pyExc).Dispose());
        Assert.That(back, Is.SameAs(original));
    }

    [TestCase(typeof(ArgumentException), "ValueError")]
    [TestCase(typeof(TimeoutException), "TimeoutError")]
    [TestCase(typeof(NotSupportedException), "NotImplementedError")]
    [TestCase(typeof(NotImplementedException), "NotImplementedError")]
    [TestCase(typeof(KeyNotFoundException), "KeyError")]
    [TestCase(typeof(InvalidCastException), "TypeError")]
    [TestCase(typeof(InsufficientExecutionStackException), "RecursionError")]
    public void NET_exceptions_map_to_the_matching_Python_type(Type type, string pythonBase)
    {
        var exception = (Exception)Activator.CreateInstance(type, "mapped")!;
        using var pyExc = ExceptionBridge.ToPython(exception);
        using var isinstance = Py.Eval($"lambda e: isinstance(e, __import__('builtins').__dict__.get('{pythonBase}') or __import__('asyncio').CancelledError)");
        Assert.That(isinstance.Call<PyObject, bool>(pyExc), $"{pyExc.TypeName} is not a {pythonBase}");
        Assert.That(pyExc.ToString(), Does.Contain(type.FullName!).And.Contain("mapped"));
    }

    [Test]
    public void NET_stack_trace_is_an_attribute_and_a_note()
    {
        Exception thrown;
        try { throw new InvalidOperationException("with stack"); }
        catch (Exception e) { thrown = e; }
        using var pyExc = ExceptionBridge.ToPython(thrown);
        Assert.That(pyExc.GetAttr("dotnet_stack_trace").As<string>(), Does.Contain(nameof(NET_stack_trace_is_an_attribute_and_a_note)));
        if (PythonLibrary.Version >= new Version(3, 11))
            Assert.That(pyExc.GetAttr("__notes__")[0].As<string>(), Does.StartWith(".NET stack trace:"));
    }

    [Test]
    public void Inner_NET_exceptions_become_the_cause()
    {
        var outer = new InvalidOperationException("outer", new ArgumentException("inner"));
        using var pyExc = ExceptionBridge.ToPython(outer);
        using var cause = pyExc.GetAttr("__cause__");
        Assert.That(cause.GetAttr("dotnet_message").As<string>(), Is.EqualTo("inner"));
    }

    [Test]
    public void Hundred_thousand_exceptions_do_not_grow_memory()
    {
        using var globals = Py.Run("import sys\ndef f():\n    raise ValueError('boom ' * 3)\ndef blocks():\n    import gc; gc.collect()\n    return sys.getallocatedblocks()\n");
        using var f = globals["f"];
        using var blocks = globals["blocks"];
        void Burst(int n)
        {
            for (int i = 0; i < n; i++)
            {
                try { f.Call().Dispose(); }
                catch (PythonException) { }
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            using (Gil.Acquire()) DeferredRelease.Drain();
        }
        Burst(10_000); // warm caches
        long pyBefore = blocks.Call<long>();
        long clrBefore = GC.GetTotalMemory(forceFullCollection: true);
        Burst(100_000);
        long pyAfter = blocks.Call<long>();
        long clrAfter = GC.GetTotalMemory(forceFullCollection: true);
        Assert.That(pyAfter - pyBefore, Is.LessThan(2_000), "Python blocks grew");
        Assert.That(clrAfter - clrBefore, Is.LessThan(4_000_000), ".NET heap grew");
    }

    [Test]
    public void OperationCanceledException_is_a_catchable_DotNetCancelledError_not_CancelledError()
    {
        using var pyExc = ExceptionBridge.ToPython(new OperationCanceledException("a timeout"));
        using var check = Py.Eval("lambda e: (type(e).__name__, isinstance(e, Exception), isinstance(e, __import__('asyncio').CancelledError))");
        using var r = check.Call(pyExc);
        Assert.That(r.ToClr(), Is.EqualTo(new object?[] { "DotNetCancelledError", true, false }));
    }

    [Test]
    public void A_NET_exception_back_from_Python_keeps_its_original_stack_trace()
    {
        using var thrower = PyFunction.Create<object?, object?>("thrower", _ => OriginalThrower());
        using var globals = Py.Run("def call(f):\n    f(None)\n");
        using var call = globals["call"];
        var e = Assert.Throws<InvalidOperationException>(() => call.Call(thrower).Dispose())!;
        Assert.That(e.Message, Is.EqualTo("thrown far away"));
        Assert.That(e.StackTrace, Does.Contain(nameof(OriginalThrower)), "the original throwing method");
        Assert.That(e.StackTrace, Does.Contain(nameof(A_NET_exception_back_from_Python_keeps_its_original_stack_trace)), "and where it came back");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static object? OriginalThrower() => throw new InvalidOperationException("thrown far away");

    [Test]
    public void A_NET_exception_whose_Message_throws_still_becomes_a_Python_exception()
    {
        var e = new ThrowingMessage();
        using var pyExc = ExceptionBridge.ToPython(e);
        Assert.That(pyExc.GetAttr("dotnet_type").As<string>(), Is.EqualTo(typeof(ThrowingMessage).FullName));
        Assert.That(pyExc.GetAttr("dotnet_message").As<string>(), Is.EqualTo("<Message threw System.InvalidOperationException>"));
        Assert.That(pyExc.GetAttr("dotnet_stack_trace").As<string>(), Is.EqualTo("<StackTrace threw System.InvalidOperationException>"));
        using var globals = Py.Run("def rethrow(e):\n    raise e\n");
        using var rethrow = globals["rethrow"];
        Assert.That(Assert.Throws<ThrowingMessage>(() => rethrow.Call(pyExc).Dispose()), Is.SameAs(e));
    }

    private sealed class ThrowingMessage : Exception
    {
        public override string Message => throw new InvalidOperationException("Message");
        public override string? StackTrace => throw new InvalidOperationException("StackTrace");
    }

    [Test]
    public void Unreadable_exception_fields_are_reported_in_place()
    {
        var e = Raise("""
            class Unprintable:
                def __str__(self):
                    raise Odd('again')
            class Odd(Exception):
                def __str__(self):
                    raise Odd('again')
            Odd.__module__ = Unprintable()
            def f():
                raise Odd()
            """);
        Assert.That(e.PythonTypeName, Is.EqualTo("Odd"));
        Assert.That(e.PythonTypeModule, Is.EqualTo("<__module__ raised Odd>"));
        Assert.That(e.PythonMessage, Is.EqualTo("<str() raised Odd>"));
        using (Gil.Acquire()) Assert.That(Py.Eval("__import__('sys').exc_info()[0]").IsNone, "no error left set");
    }
}
