using AsyncioRaw;

namespace AsyncioRaw.Tests;

[SetUpFixture]
public sealed class PythonSetup
{
    [OneTimeSetUp]
    public void Initialize()
    {
        // The test host owns SIGINT; tests that need Python's handler start a child process.
        PythonRuntime.Initialize(installSignalHandlers: false);
        TestContext.Progress.WriteLine($"Python {PythonLibrary.Version} from {PythonLibrary.LoadedPath} ({PythonLibrary.FoundBy})");
    }
}
