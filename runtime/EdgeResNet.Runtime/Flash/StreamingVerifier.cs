using System;

namespace EdgeResNet.Runtime.Flash
{
    /// <summary>
    /// Checks the weight sections' CRCs as the engine reads them, at no extra flash reads: a read
    /// that continues a section from where its last checked read ended extends that section's
    /// running CRC, and when the section has been read to its end the CRC is compared. The engine
    /// reads each layer's rows in order in every band, so the first frame checks every section;
    /// other reads (later bands, later frames) pass straight through. Allocates nothing per read.
    /// </summary>
    public sealed class StreamingVerifier : IFlash
    {
        readonly IFlash _inner;
        readonly QLayer[] _sections; // layers with weights, by section offset
        readonly long[] _next;
        readonly uint[] _crc;

        public StreamingVerifier(IFlash inner, QModel model)
        {
            _inner = inner;
            // Layers with weights, by offset (a count, a copy and an insertion sort: the portable core has no LINQ or comparers).
            int n = 0;
            foreach (var l in model.Layers) if (l.WeightsSize > 0) n++;
            _sections = new QLayer[n];
            n = 0;
            foreach (var l in model.Layers) if (l.WeightsSize > 0) _sections[n++] = l;
            for (int i = 1; i < n; i++)
                for (int j = i; j > 0 && _sections[j - 1].WeightsOffset > _sections[j].WeightsOffset; j--)
                {
                    var t = _sections[j]; _sections[j] = _sections[j - 1]; _sections[j - 1] = t;
                }
            _next = new long[_sections.Length];
            _crc = new uint[_sections.Length];
            for (int i = 0; i < _sections.Length; i++) _next[i] = _sections[i].WeightsOffset;
        }

        public long Length => _inner.Length;
        public int Sections => _sections.Length;
        /// <summary>Weight sections read to their end with a matching CRC.</summary>
        public int Verified { get; private set; }
        public bool AllVerified => Verified == _sections.Length;

        public void Read(long offset, Span<byte> destination)
        {
            _inner.Read(offset, destination);
            if (AllVerified) return;
            int i = SectionAt(offset);
            if (i < 0) return;
            var l = _sections[i];
            long end = l.WeightsOffset + l.WeightsSize;
            if (_next[i] != offset) return; // not the continuation of this section's checked reads
            int n = (int)Math.Min(destination.Length, end - offset);
            _crc[i] = Crc32.Append(_crc[i], destination.Slice(0, n));
            _next[i] += n;
            if (_next[i] < end) return;
            if (_crc[i] != l.WeightsCrc) throw FlashImage.WeightsCorrupt(l);
            Verified++;
        }

        /// <summary>The section holding <paramref name="offset"/>, or -1 (binary search over the sorted sections).</summary>
        int SectionAt(long offset)
        {
            int lo = 0, hi = _sections.Length - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >> 1;
                var l = _sections[mid];
                if (offset < l.WeightsOffset) hi = mid - 1;
                else if (offset >= l.WeightsOffset + l.WeightsSize) lo = mid + 1;
                else return mid;
            }
            return -1;
        }
    }
}
