// Runs the header check against every installed CPython: exit code 0 when all pass.
using AsyncioRaw.Interop;
using AsyncioRaw.NativeHeaders;

var source = HeaderCheck.Generate(HeaderCheck.InteropTypes(), CPython.DataExportNames);
if (args is ["--print"]) { Console.Write(source); return 0; }
int failures = 0;
foreach (var python in HeaderCheck.InstalledPythons())
{
    var outcome = HeaderCheck.Check(source, python, Path.Combine(Path.GetTempPath(), "asyncioraw-headers", python.Name.Replace(' ', '-')));
    Console.WriteLine($"{(outcome.Passed ? "ok  " : "FAIL")} {python.Name} ({outcome.Stage})");
    if (!outcome.Passed) { failures++; Console.WriteLine(outcome.Output); }
}
return failures == 0 ? 0 : 1;
