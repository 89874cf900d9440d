namespace AsyncioRaw.Tests.Hostile;

/// <summary>Python data that refers to itself or nests too deep, and huge strings: a clear
/// exception on each side, never a stack overflow, and no buffer kept after the conversion.</summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class ConversionAttackTests
{
    [Test]
    public void Self_referencing_Python_data_is_refused_by_ToClr() =>
        Attacks.Run("conversion.toclr_cycles").AssertSurvived()
            .Expect("self_list", "ArgumentException: ").Expect("self_dict", "ArgumentException: ")
            .Expect("indirect", "ArgumentException: ").Expect("shared", "converted");

    [Test]
    public void Python_data_nested_too_deep_is_refused_by_ToClr() =>
        Attacks.Run("conversion.toclr_deep").AssertSurvived()
            .Expect("deep", "InsufficientExecutionStackException: ").Expect("deep_dict", "InsufficientExecutionStackException: ")
            .Expect("deep500", "ok");

    [Test]
    public void A_small_thread_stack_gets_an_exception_not_an_overflow() =>
        Attacks.Run("conversion.toclr_deep_on_small_stack").AssertSurvived()
            .Expect("deep900", "InsufficientExecutionStackException: ");

    [Test]
    public void A_NET_function_given_cyclic_or_deep_arguments_raises_in_Python() =>
        Attacks.Run("conversion.function_args").AssertSurvived()
            .Expect("self_list", "ValueError,Exception:").Expect("self_dict", "ValueError,Exception:")
            .Expect("deep", "RecursionError,Exception:");

    [Test]
    public void A_NET_function_returning_cyclic_or_deep_data_raises_in_Python() =>
        Attacks.Run("conversion.function_results").AssertSurvived()
            .Expect("cycle", "ValueError,Exception:").Expect("deep", "RecursionError,Exception:");

    [Test]
    public void Self_referencing_or_deep_NET_data_is_refused_by_ToPython() =>
        Attacks.Run("conversion.topython").AssertSurvived()
            .Expect("self_list", "ArgumentException: ").Expect("self_dict", "ArgumentException: ")
            .Expect("through_tuple", "ArgumentException: ").Expect("deep", "InsufficientExecutionStackException: ")
            .Expect("shared", "ok").Expect("setitem", "ArgumentException: ");

    [Test]
    public void Converting_a_300_MB_string_keeps_no_buffer_afterwards()
    {
        var r = Attacks.Run("conversion.large_string_rss", timeoutSeconds: 120).AssertSurvived().Expect("roundtrip", "same");
        Assert.That(r.Number("retained_mb"), Is.LessThan(50), r.ToString());
        Assert.That(r.Number("retained_nonascii_mb"), Is.LessThan(50), r.ToString());
    }
}
