namespace AsyncioRaw.Tests.Hostile;

/// <summary>Shutdown from the wrong place, and .NET code Python calls while it finalizes.</summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class LifecycleAttackTests
{
    [Test]
    public void Shutdown_inside_AllowThreads_is_refused_and_Python_keeps_working() =>
        Attacks.Run("lifecycle.shutdown_in_allow_threads").AssertSurvived()
            .Expect("shutdown", "InvalidOperationException")
            .Expect("initialized_after", "True")
            .Expect("call_after", "42")
            .Expect("shutdown_later", "ok");

    [Test]
    public void Shutdown_inside_a_callback_is_refused_even_with_the_GIL_released() =>
        Attacks.Run("lifecycle.shutdown_in_callback").AssertSurvived()
            .Expect("in_callback", "InvalidOperationException")
            .Expect("released_result", "7")
            .Expect("in_callback_released", "InvalidOperationException")
            .Expect("initialized_after", "True")
            .Expect("shutdown_later", "ok");

    [Test]
    public void Dotnet_functions_run_from_atexit_and_from_del_during_finalization()
    {
        var r = Attacks.Run("lifecycle.callbacks_in_finalization").AssertSurvived().Expect("shutdown", "ok");
        Assert.That(r.Output, Does.Not.Contain("NullReferenceException"), r.ToString());
        Assert.That(r.Value("atexit_error"), Is.Null, r.ToString());
        Assert.That(r.Value("seen"), Does.Contain("atexit:41"), r.ToString());
        // __del__ during Py_FinalizeEx: it runs, or it gets a clear error naming finalization.
        Assert.That(r.Value("seen")!.Contains("del:bye") || (r.Value("del_error") ?? "").Contains("finaliz"), r.ToString());
    }

    [Test]
    public void A_daemon_thread_in_a_dotnet_callback_is_not_ended_mid_frame_by_shutdown() =>
        Attacks.Run("lifecycle.daemon_in_callback_at_shutdown").AssertSurvived()
            .Expect("shutdown", "ok")
            .Expect("lock_free", "True")
            .Expect("balanced", "0");
}
