namespace EdgeResNet.Runtime
{
    /// <summary>
    /// The integer arithmetic of the whole pipeline, spelled out once: rounding shifts and
    /// divisions round half up (towards +infinity), saturation clamps to the target width.
    /// The tools' simulator and the runtime both call these, so they cannot drift apart.
    /// </summary>
    public static class FixedPoint
    {
        /// <summary>x / 2^shift rounded half up for shift &gt; 0; x * 2^-shift for shift &lt;= 0.</summary>
        public static long RoundShift(long x, int shift)
        {
            if (shift > 0) return (x + (1L << (shift - 1))) >> shift;
            return x << -shift;
        }

        /// <summary>a / n rounded half up, n &gt; 0: floor((2a + n) / 2n).</summary>
        public static long RoundDiv(long a, long n)
        {
            long num = 2 * a + n, den = 2 * n;
            return num >= 0 ? num / den : -((-num + den - 1) / den);
        }

        /// <summary>Clamps to the signed range of <paramref name="bits"/> bits (2 to 32).</summary>
        public static long Saturate(long x, int bits)
        {
            long max = (1L << (bits - 1)) - 1, min = -(1L << (bits - 1));
            return x > max ? max : x < min ? min : x;
        }

        /// <summary>
        /// From a conv accumulator (fraction bits fa) to the output format: per output channel,
        /// (acc * multiplier + offset * 2^offsetShift) / 2^outShift, rounded, then ReLU.
        /// The separate scheme's BN is the multiplier and offset; the folded scheme has multiplier 1.
        /// </summary>
        public static long Requantize(long acc, int multiplier, int offset, int offsetShift, int outShift, bool relu)
        {
            long y = RoundShift(acc * multiplier + ((long)offset << offsetShift), outShift);
            return relu && y < 0 ? 0 : y;
        }
    }
}
