using AsyncioRaw;

PythonRuntime.Initialize();
Console.WriteLine($"Python {PythonLibrary.Version} from {PythonLibrary.LoadedPath} (found by {PythonLibrary.FoundBy})");

using var globals = Py.Run("""
    import math
    def hypot(a, b):
        return math.sqrt(a * a + b * b)
    """);
using var hypot = globals["hypot"];
Console.WriteLine($"hypot(3, 4) = {hypot.Call<double, double, double>(3, 4)}");
try
{
    Py.Eval("1 / 0").Dispose();
}
catch (PythonException e)
{
    Console.WriteLine($"caught {e.PythonTypeName}: {e.PythonMessage}");
}
