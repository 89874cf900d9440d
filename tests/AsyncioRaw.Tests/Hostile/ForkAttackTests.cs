namespace AsyncioRaw.Tests.Hostile;

/// <summary>fork from a .NET host: the parent survives whatever the child does.</summary>
[TestFixture, Parallelizable(ParallelScope.Children)]
public class ForkAttackTests
{
    [Test]
    public void A_child_that_exits_or_is_killed_does_not_take_the_parent_with_it() =>
        Attacks.Run("fork.exit_and_kill").AssertSurvived()
            .Expect("child_exit", "3")
            .Expect("child_killed", "-15")
            .Expect("parent", "alive");

    [Test]
    public void A_fork_pool_maps_a_pure_Python_function() =>
        Attacks.Run("fork.pool").AssertSurvived().Expect("pool_sum", "2500").Expect("parent", "alive");

    [Test]
    public void A_child_calling_dotnet_gets_a_clear_Python_error() =>
        Attacks.Run("fork.child_calls_dotnet").AssertSurvived()
            .Expect("parent_call", "2")
            .Expect("child", "RuntimeError: ")
            .Expect("parent_call_after", "3")
            .Expect("parent", "alive");

    [Test]
    public void Forking_from_the_event_loop_thread_is_survived() =>
        Attacks.Run("fork.from_loop").AssertSurvived().Expect("child", "RuntimeError: ").Expect("parent", "alive");
}
