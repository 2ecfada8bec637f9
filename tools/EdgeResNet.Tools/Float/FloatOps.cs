using EdgeResNet.Tools.Model;

namespace EdgeResNet.Tools.Float;

/// <summary>The float reference kernels, one per operator. Tensors are HWC float arrays.</summary>
public static class FloatOps
{
    public static float[] ZeroPad(float[] x, Shape3 s, Layer l)
    {
        var o = l.OutShape;
        var y = new float[o.Size];
        for (int h = 0; h < s.H; h++)
            x.AsSpan(h * s.W * s.C, s.W * s.C).CopyTo(y.AsSpan(((h + l.PadTop) * o.W + l.PadLeft) * o.C));
        return y;
    }

    /// <summary>Convolution as im2col + GEMM. The im2col row order (kh, kw, cin) matches the HWIO kernel.</summary>
    public static float[] Conv2D(float[] x, Shape3 s, Layer l, float[] packedKernel)
    {
        var o = l.OutShape;
        int k = l.KernelH * l.KernelW * s.C;
        bool direct = l.KernelH == 1 && l.KernelW == 1 && l.StrideH == 1 && l.StrideW == 1 && l.PadTop + l.PadLeft == 0;
        float[] a = direct ? x : Im2Col(x, s, l);
        var y = new float[o.Size];
        Gemm.Multiply(a, o.H * o.W, k, packedKernel, o.C, l.Bias, y);
        return y;
    }

    static float[] Im2Col(float[] x, Shape3 s, Layer l)
    {
        var o = l.OutShape;
        int k = l.KernelH * l.KernelW * s.C;
        var a = new float[(long)o.H * o.W * k];
        for (int oy = 0; oy < o.H; oy++)
            for (int ox = 0; ox < o.W; ox++)
            {
                var row = a.AsSpan((oy * o.W + ox) * k, k);
                for (int ky = 0; ky < l.KernelH; ky++)
                {
                    int iy = oy * l.StrideH + ky - l.PadTop;
                    if (iy < 0 || iy >= s.H) continue; // stays zero: padding
                    for (int kx = 0; kx < l.KernelW; kx++)
                    {
                        int ix = ox * l.StrideW + kx - l.PadLeft;
                        if (ix < 0 || ix >= s.W) continue;
                        x.AsSpan((iy * s.W + ix) * s.C, s.C).CopyTo(row.Slice((ky * l.KernelW + kx) * s.C));
                    }
                }
            }
        return a;
    }

    /// <summary>Per-channel y = x * scale + shift with scale = gamma / sqrt(var + eps), shift = beta - mean * scale.</summary>
    public static (float[] Scale, float[] Shift) BatchNormScaleShift(Layer l)
    {
        int c = l.Gamma.Length;
        var scale = new float[c];
        var shift = new float[c];
        for (int i = 0; i < c; i++)
        {
            double sc = l.Gamma[i] / Math.Sqrt((double)l.Variance[i] + l.Epsilon);
            scale[i] = (float)sc;
            shift[i] = (float)(l.Beta[i] - l.Mean[i] * sc);
        }
        return (scale, shift);
    }

    public static float[] BatchNorm(float[] x, (float[] Scale, float[] Shift) bn)
    {
        int c = bn.Scale.Length;
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i += c)
            for (int j = 0; j < c; j++)
                y[i + j] = x[i + j] * bn.Scale[j] + bn.Shift[j];
        return y;
    }

    public static float[] Relu(float[] x)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = Math.Max(x[i], 0f);
        return y;
    }

    public static float[] Add(float[][] inputs)
    {
        var y = (float[])inputs[0].Clone();
        foreach (var x in inputs.Skip(1))
            for (int i = 0; i < y.Length; i++) y[i] += x[i];
        return y;
    }

    /// <summary>Max pooling; padded positions are skipped (Keras "same" max pool ignores them).</summary>
    public static float[] MaxPool(float[] x, Shape3 s, Layer l)
    {
        var o = l.OutShape;
        var y = new float[o.Size];
        for (int oy = 0; oy < o.H; oy++)
            for (int ox = 0; ox < o.W; ox++)
                for (int c = 0; c < s.C; c++)
                {
                    float m = float.NegativeInfinity;
                    for (int ky = 0; ky < l.KernelH; ky++)
                    {
                        int iy = oy * l.StrideH + ky - l.PadTop;
                        if (iy < 0 || iy >= s.H) continue;
                        for (int kx = 0; kx < l.KernelW; kx++)
                        {
                            int ix = ox * l.StrideW + kx - l.PadLeft;
                            if (ix >= 0 && ix < s.W) m = Math.Max(m, x[(iy * s.W + ix) * s.C + c]);
                        }
                    }
                    y[(oy * o.W + ox) * o.C + c] = m;
                }
        return y;
    }

    public static float[] GlobalAvgPool(float[] x, Shape3 s)
    {
        var sum = new double[s.C];
        for (int p = 0; p < s.H * s.W; p++)
            for (int c = 0; c < s.C; c++) sum[c] += x[p * s.C + c];
        return sum.Select(v => (float)(v / (s.H * s.W))).ToArray();
    }

    public static float[] Dense(float[] x, Layer l, float[] packedKernel)
    {
        var y = new float[l.OutShape.C];
        Gemm.Multiply(x, 1, x.Length, packedKernel, y.Length, l.Bias, y);
        return y;
    }
}
