using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace EdgeResNet.Tools.Float;

/// <summary>
/// C[P,N] = A[P,K] x B[K,N] + bias[N] in float32, the one matrix product of the float reference
/// (convolution after im2col, and the dense layer). B is packed once into panels of
/// <see cref="PanelWidth"/> columns so the inner loop reads it contiguously.
/// </summary>
public static class Gemm
{
    public const int PanelWidth = 16;

    /// <summary>Packs B [K][N] (row-major, as HWIO / Keras Dense kernels are) into zero-padded column panels.</summary>
    public static float[] PackB(ReadOnlySpan<float> b, int k, int n)
    {
        int panels = (n + PanelWidth - 1) / PanelWidth;
        var packed = new float[checked(panels * k * PanelWidth)];
        for (int p = 0; p < panels; p++)
        {
            int cols = Math.Min(PanelWidth, n - p * PanelWidth);
            for (int r = 0; r < k; r++)
                b.Slice(r * n + p * PanelWidth, cols).CopyTo(packed.AsSpan((p * k + r) * PanelWidth, cols));
        }
        return packed;
    }

    public static unsafe void Multiply(ReadOnlySpan<float> a, int rows, int k, float[] packedB, int n, ReadOnlySpan<float> bias, Span<float> c)
    {
        if (a.Length < rows * k || c.Length < rows * n || bias.Length != n || packedB.Length < (n + PanelWidth - 1) / PanelWidth * k * PanelWidth)
            throw new ArgumentException("matrix sizes do not match");
        Span<float> tail = stackalloc float[PanelWidth];
        Span<float> biasPanel = stackalloc float[PanelWidth];
        fixed (float* pa = a, pb = packedB, pc = c, pt = tail, pbias = biasPanel)
        {
            for (int p = 0; p * PanelWidth < n; p++)
            {
                int col = p * PanelWidth, cols = Math.Min(PanelWidth, n - col);
                biasPanel.Clear();
                bias.Slice(col, cols).CopyTo(biasPanel);
                float* panel = pb + (long)p * k * PanelWidth;
                int i = 0;
                if (cols == PanelWidth)
                    for (; i + 4 <= rows; i += 4)
                        Kernel4x16(pa + (long)i * k, k, panel, pbias, pc + (long)i * n + col, n);
                for (; i < rows; i++)
                {
                    Kernel1x16(pa + (long)i * k, k, panel, pbias, pt);
                    tail[..cols].CopyTo(c.Slice(i * n + col, cols));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> acc) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, acc) : acc + a * b;

    /// <summary>Four rows of A against one 16-wide panel: 8 accumulators stay in registers over all of K.</summary>
    static unsafe void Kernel4x16(float* a, int k, float* panel, float* bias, float* c, int ldc)
    {
        var b0 = Vector256.Load(bias); var b1 = Vector256.Load(bias + 8);
        Vector256<float> c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
        float* a0 = a, a1 = a + k, a2 = a + 2 * k, a3 = a + 3 * k;
        for (int r = 0; r < k; r++)
        {
            var w0 = Vector256.Load(panel); var w1 = Vector256.Load(panel + 8);
            panel += PanelWidth;
            var x = Vector256.Create(a0[r]); c00 = MulAdd(x, w0, c00); c01 = MulAdd(x, w1, c01);
            x = Vector256.Create(a1[r]); c10 = MulAdd(x, w0, c10); c11 = MulAdd(x, w1, c11);
            x = Vector256.Create(a2[r]); c20 = MulAdd(x, w0, c20); c21 = MulAdd(x, w1, c21);
            x = Vector256.Create(a3[r]); c30 = MulAdd(x, w0, c30); c31 = MulAdd(x, w1, c31);
        }
        c00.Store(c); c01.Store(c + 8);
        c10.Store(c + ldc); c11.Store(c + ldc + 8);
        c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 8);
        c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 8);
    }

    static unsafe void Kernel1x16(float* a, int k, float* panel, float* bias, float* c)
    {
        var c0 = Vector256.Load(bias); var c1 = Vector256.Load(bias + 8);
        for (int r = 0; r < k; r++, panel += PanelWidth)
        {
            var x = Vector256.Create(a[r]);
            c0 = MulAdd(x, Vector256.Load(panel), c0);
            c1 = MulAdd(x, Vector256.Load(panel + 8), c1);
        }
        c0.Store(c); c1.Store(c + 8);
    }
}
