using EdgeResNet.Runtime.Kernels;
using EdgeResNet.KernelCheck;

// Exit 0 when every case's SIMD output equals the reference kernel's, 1 when one differs, 2 when this CPU has no SIMD kernel.
if (!FastConv.IsSupported)
{
    Console.Error.WriteLine("error: this CPU has neither AVX2 nor arm64 NEON, so there is no SIMD conv kernel to check");
    return 2;
}
Console.WriteLine($"kernel: {ConvDispatch.Describe(simd: true)}, {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}");
int failed = 0, cases = 0;
foreach (var r in KernelCases.Run())
{
    cases++;
    int diff = Enumerable.Range(0, r.Expected.Length).Count(i => r.Expected[i] != r.Actual[i] || r.ExpectedWide[i] != r.ActualWide[i]);
    bool ok = r.Equal && r.ProducesSomething;
    if (!ok) failed++;
    Console.WriteLine($"{(ok ? "ok  " : "FAIL")} {r.Name,-32} {r.Kernel,-9} im2col {FastConv.Im2ColShortsPerPixel(r.Layer, r.Kernel == ConvKernel.SimdSplit),4}/pixel  " +
        (r.ProducesSomething ? $"{diff} of {r.Expected.Length} outputs differ" : "the case produces only zeros"));
}
Console.WriteLine(failed == 0 ? $"all {cases} cases bit-exact with the reference kernel" : $"{failed} of {cases} cases differ from the reference kernel");
return failed == 0 ? 0 : 1;
