using System;

namespace EdgeResNet.Runtime.Input
{
    /// <summary>
    /// A raw camera frame to the network input, integers only, as the image's
    /// <see cref="InputPreprocessing"/> says: colour conversion to RGB, Pillow's BILINEAR resize of
    /// the shorter side (the same separable 22-bit fixed-point passes, horizontal then vertical,
    /// each rounded and clipped to 8 bits; the filter taps are derived as exact fractions instead
    /// of doubles), centre crop, channel order, mean subtraction and quantisation to the input format. Only the crop is computed: the horizontal pass runs on
    /// the source rows the crop needs, held in a ring of a few rows, so RAM stays near one
    /// source row plus a few crop rows. Built once per frame size; Run allocates nothing.
    /// </summary>
    public sealed class FramePreprocessor : IInputRows
    {
        /// <summary>Pillow's precision for 8-bit resampling (32 - 8 - 2).</summary>
        const int PrecisionBits = 22;

        readonly int _frameWidth, _frameHeight, _cropSize;
        readonly Axis _columns, _rows;
        readonly int _sourceColumnLo, _sourceColumnHi;
        readonly byte[] _rgbRow;
        readonly byte[] _ring;
        readonly int[] _ringSourceRow;
        readonly int[] _ringOffset; // byte offset in the ring of each vertical tap of the current row
        readonly short[] _quantise; // [R, G, B channel * 256 + 8-bit value]: the value of its network channel
        readonly InputPreprocessing _preprocessing;

        public FramePreprocessor(int frameWidth, int frameHeight, InputPreprocessing preprocessing, int inputFrac, int activationBits)
        {
            if (frameWidth <= 0 || frameHeight <= 0) throw new ArgumentException($"frame size {frameWidth}x{frameHeight} is not positive");
            int shorter = Math.Min(frameWidth, frameHeight), cropSize = preprocessing.CropSize, resizeTo = preprocessing.ResizeShorterSide;
            // The other side is round(side * resizeTo / shorter), half to even as Python's round().
            int resizedWidth = RoundHalfEven((long)frameWidth * resizeTo, shorter);
            int resizedHeight = RoundHalfEven((long)frameHeight * resizeTo, shorter);
            if (cropSize <= 0 || cropSize > Math.Min(resizedWidth, resizedHeight))
                throw new ArgumentException($"a {cropSize}x{cropSize} crop does not fit the frame resized to {resizedWidth}x{resizedHeight}");
            _frameWidth = frameWidth; _frameHeight = frameHeight; _cropSize = cropSize;
            _columns = new Axis(frameWidth, resizedWidth, (resizedWidth - cropSize) / 2, cropSize);
            _rows = new Axis(frameHeight, resizedHeight, (resizedHeight - cropSize) / 2, cropSize);
            _sourceColumnLo = _columns.Start[0];
            _sourceColumnHi = _sourceColumnLo;
            for (int i = 0; i < cropSize; i++) _sourceColumnHi = Math.Max(_sourceColumnHi, _columns.Start[i] + _columns.Count[i]);
            _rgbRow = new byte[(_sourceColumnHi - _sourceColumnLo) * 3];
            _ring = new byte[_rows.Taps * cropSize * 3];
            _ringSourceRow = new int[_rows.Taps];
            _ringOffset = new int[_rows.Taps];
            _quantise = new short[3 * 256];
            _preprocessing = preprocessing;
            for (int c = 0; c < 3; c++)
            {
                int mean = preprocessing.MeanMilli[preprocessing.NetworkChannel(c)];
                for (int v = 0; v < 256; v++)
                    _quantise[c * 256 + v] = (short)FixedPoint.Saturate(FixedPoint.RoundDiv(((long)v * 1000 - mean) << inputFrac, 1000), activationBits);
            }
        }

        /// <summary>For a model's input (its preprocessing, fraction bits, activation width) and a camera's frame size.</summary>
        public static FramePreprocessor For(QModel model, int frameWidth, int frameHeight)
        {
            if (model.InputH != model.InputW || model.InputC != 3 || model.Preprocessing.CropSize != model.InputH)
                throw new ArgumentException($"the image expects a {model.InputH}x{model.InputW}x{model.InputC} input from a {model.Preprocessing.CropSize}x{model.Preprocessing.CropSize} crop; frames are preprocessed to square RGB crops of the input size only");
            return new FramePreprocessor(frameWidth, frameHeight, model.Preprocessing, model.InputFrac, model.ActivationBits);
        }

        public int FrameWidth => _frameWidth;
        public int FrameHeight => _frameHeight;

        /// <summary>Bytes this preprocessor holds (row buffers, ring, tap tables, quantisation table).</summary>
        public int RamBytes => _rgbRow.Length + _ring.Length + _ringSourceRow.Length * 8 + _quantise.Length * 2 + _columns.RamBytes + _rows.RamBytes;

        /// <summary>Writes the cropSize x cropSize x 3 network input (HWC, BGR) for <paramref name="frame"/>.</summary>
        public void Run(Frame frame, Span<short> input)
        {
            int rowValues = _cropSize * 3;
            if (input.Length != _cropSize * rowValues)
                throw new ArgumentException($"the input needs {_cropSize * rowValues} values, the span has {input.Length}");
            Begin(frame);
            WriteRows(0, _cropSize, input);
        }

        Frame? _frame;
        int _nextRow;

        /// <summary>Starts a frame: <see cref="WriteRows"/> then gives its input rows, in order (the engine asks as its first layer needs them).</summary>
        public void Begin(Frame frame)
        {
            if (frame.Width != _frameWidth || frame.Height != _frameHeight)
                throw new ArgumentException($"this preprocessor was built for {_frameWidth}x{_frameHeight} frames, got {frame.Width}x{frame.Height}");
            _frame = frame;
            _nextRow = 0;
            for (int i = 0; i < _ringSourceRow.Length; i++) _ringSourceRow[i] = -1;
        }

        /// <summary>Input rows [first, first + count) of the frame given to <see cref="Begin"/>; rows come in order, each at most once.</summary>
        public void WriteRows(int first, int count, Span<short> rows)
        {
            var frame = _frame ?? throw new InvalidOperationException("no frame: call Begin(frame) before asking for its rows");
            int rowValues = _cropSize * 3;
            if (first < _nextRow || count < 0 || first + count > _cropSize || rows.Length < count * rowValues)
                throw new ArgumentException($"input rows are made in order: expected rows from {_nextRow} on (of {_cropSize}, {rowValues} values each), asked for [{first},{first + count}) into {rows.Length} values");
            for (int y = first; y < first + count; y++)
            {
                int firstSource = _rows.Start[y], taps = _rows.Count[y];
                for (int s = firstSource; s < firstSource + taps; s++)
                {
                    int slot = s % _rows.Taps;
                    if (_ringSourceRow[slot] == s) continue;
                    ConvertRow(frame, s, _sourceColumnLo, _sourceColumnHi, _rgbRow);
                    ResampleRow(_rgbRow, new Span<byte>(_ring, slot * rowValues, rowValues));
                    _ringSourceRow[slot] = s;
                }
                Span<short> output = rows.Slice((y - first) * rowValues, rowValues);
                int[] ringOffset = _ringOffset;
                for (int t = 0; t < taps; t++) ringOffset[t] = (firstSource + t) % _rows.Taps * rowValues;
                int coeffs = y * _rows.Taps;
                for (int i = 0; i < rowValues; i++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int t = 0; t < taps; t++)
                        sum += _ring[ringOffset[t] + i] * _rows.Coefficients[coeffs + t];
                    int rgbChannel = i % 3;
                    output[i - rgbChannel + _preprocessing.NetworkChannel(rgbChannel)] = _quantise[rgbChannel * 256 + Clip8(sum)];
                }
            }
            _nextRow = first + count;
        }

        /// <summary>The horizontal pass for one source row (RGB bytes from column <see cref="_sourceColumnLo"/>).</summary>
        void ResampleRow(byte[] rgb, Span<byte> destination)
        {
            for (int x = 0; x < _cropSize; x++)
            {
                int first = (_columns.Start[x] - _sourceColumnLo) * 3, taps = _columns.Count[x], coeffs = x * _columns.Taps;
                for (int c = 0; c < 3; c++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int t = 0; t < taps; t++)
                        sum += rgb[first + t * 3 + c] * _columns.Coefficients[coeffs + t];
                    destination[x * 3 + c] = Clip8(sum);
                }
            }
        }

        static byte Clip8(int v) => v >= 1 << PrecisionBits << 8 ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);

        /// <summary>Columns [lo, hi) of one frame row to R, G, B bytes (one loop per format: this runs for every source row of every frame).</summary>
        public static void ConvertRow(Frame frame, int row, int lo, int hi, Span<byte> rgb)
        {
            byte[] d = frame.Data;
            int rowStart = row * frame.Stride;
            switch (frame.Format)
            {
                case PixelFormat.Rgb24:
                    new Span<byte>(d, rowStart + lo * 3, (hi - lo) * 3).CopyTo(rgb); // Span: Mono 6.8 lacks parts of ReadOnlySpan
                    break;
                case PixelFormat.Bgr24:
                    for (int x = lo, o = 0; x < hi; x++, o += 3)
                    {
                        int p = rowStart + x * 3;
                        rgb[o] = d[p + 2]; rgb[o + 1] = d[p + 1]; rgb[o + 2] = d[p];
                    }
                    break;
                case PixelFormat.Rgb565:
                    for (int x = lo, o = 0; x < hi; x++, o += 3)
                    {
                        int p = rowStart + x * 2, v = d[p] | d[p + 1] << 8;
                        int r = v >> 11, g = (v >> 5) & 63, b = v & 31;
                        // Widen by repeating the top bits, so 31 maps to 255 and 0 to 0.
                        rgb[o] = (byte)(r << 3 | r >> 2); rgb[o + 1] = (byte)(g << 2 | g >> 4); rgb[o + 2] = (byte)(b << 3 | b >> 2);
                    }
                    break;
                case PixelFormat.Yuyv:
                    for (int x = lo, o = 0; x < hi; x++, o += 3)
                    {
                        int pair = rowStart + (x >> 1) * 4;
                        YuvToRgb(d[pair + (x & 1) * 2], d[pair + 1], d[pair + 3], rgb.Slice(o, 3));
                    }
                    break;
                case PixelFormat.Grey8:
                    for (int x = lo, o = 0; x < hi; x++, o += 3)
                    {
                        byte v = d[rowStart + x];
                        rgb[o] = v; rgb[o + 1] = v; rgb[o + 2] = v;
                    }
                    break;
                default: throw new ArgumentException("unsupported pixel format " + frame.Format);
            }
        }

        /// <summary>BT.601 limited-range YCbCr to RGB in 8-bit fixed point (the coefficients 1.164, 1.596, 0.391, 0.813, 2.018 times 256).</summary>
        public static void YuvToRgb(int y, int u, int v, Span<byte> rgb)
        {
            int c = 298 * (y - 16) + 128, d = u - 128, e = v - 128;
            rgb[0] = ClampByte((c + 409 * e) >> 8);
            rgb[1] = ClampByte((c - 100 * d - 208 * e) >> 8);
            rgb[2] = ClampByte((c + 516 * d) >> 8);
        }

        static byte ClampByte(int v) => v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;

        static int RoundHalfEven(long a, long n)
        {
            long q = a / n, r = a % n;
            if (2 * r > n || (2 * r == n && (q & 1) == 1)) q++;
            return (int)q;
        }

        static long FloorDiv(long a, long n) => a >= 0 ? a / n : -((-a + n - 1) / n);

        /// <summary>
        /// Pillow's precompute_coeffs + normalize_coeffs_8bpc for output pixels [first, first + length)
        /// of an inSize -> outSize resize, in exact fractions. Positions are in units of 1/(2 outSize):
        /// the output pixel's centre is (2i + 1) inSize, the filter's half-width is 2 inSize when
        /// downscaling (the support widens with the scale) or 2 outSize when upscaling.
        /// </summary>
        sealed class Axis
        {
            public readonly int Taps;
            public readonly int[] Start, Count, Coefficients;

            public Axis(int inSize, int outSize, int first, int length)
            {
                bool down = inSize >= outSize;
                long den = 2L * outSize, half = down ? 2L * inSize : 2L * outSize;
                // ceil(support) * 2 + 1 taps, as Pillow sizes its table.
                Taps = (int)((inSize + outSize - 1) / outSize) * 2 + 1;
                if (!down) Taps = 3;
                Start = new int[length]; Count = new int[length]; Coefficients = new int[length * Taps];
                var weights = new long[Taps];
                for (int i = 0; i < length; i++)
                {
                    long centre = (2L * (first + i) + 1) * inSize;
                    int lo = (int)Math.Max(FloorDiv(centre - half + outSize, den), 0);
                    int hi = (int)Math.Min(FloorDiv(centre + half + outSize, den), inSize);
                    long total = 0;
                    for (int x = lo; x < hi; x++)
                    {
                        // The triangle filter at (x + 0.5 - centre) / support, times 'half'.
                        long w = Math.Max(half - Math.Abs((2L * x + 1) * outSize - centre), 0);
                        weights[x - lo] = w;
                        total += w;
                    }
                    Start[i] = lo; Count[i] = hi - lo;
                    for (int x = 0; x < hi - lo; x++)
                        Coefficients[i * Taps + x] = total == 0 ? 0 : (int)FixedPoint.RoundDiv(weights[x] << PrecisionBits, total);
                }
            }

            public int RamBytes => (Start.Length + Count.Length + Coefficients.Length) * 4;
        }
    }
}
