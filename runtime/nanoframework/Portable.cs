// Only in the nanoFramework build (EdgeResNet.Runtime.NanoFramework.csproj): what nanoFramework's mscorlib lacks
// and the integer core uses. Span<T> and ReadOnlySpan<T> are a small slice struct of our own, an array with an
// offset and a length, with the members the core calls; System.Math is integer Min, Max and Abs (nanoFramework
// ships Math in a separate package, not served here). On .NET and netstandard2.1 the real types are used.
namespace System
{
    /// <summary>A bounds-checked window of an array: the slice the portable core passes around.</summary>
    public struct Span<T>
    {
        readonly T[] _a; readonly int _o; public readonly int Length;
        public Span(T[] a) { _a = a; _o = 0; Length = a == null ? 0 : a.Length; }
        public Span(T[] a, int o, int n) { if (o < 0 || n < 0 || o + n > a.Length) throw new ArgumentOutOfRangeException(); _a = a; _o = o; Length = n; }
        public T this[int i] { get { if ((uint)i >= (uint)Length) throw new IndexOutOfRangeException(); return _a[_o + i]; } set { if ((uint)i >= (uint)Length) throw new IndexOutOfRangeException(); _a[_o + i] = value; } }
        public Span<T> Slice(int o) => new Span<T>(_a, _o + o, Length - o);
        public Span<T> Slice(int o, int n) { if (o < 0 || n < 0 || o + n > Length) throw new ArgumentOutOfRangeException(); return new Span<T>(_a, _o + o, n); }
        public void CopyTo(Span<T> d) { if (d.Length < Length) throw new ArgumentException(); Array.Copy(_a, _o, d._a, d._o, Length); }
        public void Fill(T v) { for (int i = 0; i < Length; i++) _a[_o + i] = v; }
        public void Clear() { Array.Clear(_a, _o, Length); }
        public bool IsEmpty => Length == 0;
        public static implicit operator Span<T>(T[] a) => new Span<T>(a);
        public static implicit operator ReadOnlySpan<T>(Span<T> s) => new ReadOnlySpan<T>(s._a, s._o, s.Length);
    }
    /// <summary>A read-only window of an array.</summary>
    public struct ReadOnlySpan<T>
    {
        readonly T[] _a; readonly int _o; public readonly int Length;
        public ReadOnlySpan(T[] a) { _a = a; _o = 0; Length = a == null ? 0 : a.Length; }
        public ReadOnlySpan(T[] a, int o, int n) { _a = a; _o = o; Length = n; }
        public T this[int i] { get { if ((uint)i >= (uint)Length) throw new IndexOutOfRangeException(); return _a[_o + i]; } }
        public ReadOnlySpan<T> Slice(int o) => new ReadOnlySpan<T>(_a, _o + o, Length - o);
        public ReadOnlySpan<T> Slice(int o, int n) => new ReadOnlySpan<T>(_a, _o + o, n);
        public void CopyTo(Span<T> d) { for (int i = 0; i < Length; i++) d[i] = _a[_o + i]; }
        public bool IsEmpty => Length == 0;
        public static implicit operator ReadOnlySpan<T>(T[] a) => new ReadOnlySpan<T>(a);
    }

    /// <summary>The integer part of System.Math the core uses.</summary>
    public static class Math
    {
        public static int Max(int a, int b) => a > b ? a : b;
        public static int Min(int a, int b) => a < b ? a : b;
        public static long Max(long a, long b) => a > b ? a : b;
        public static long Min(long a, long b) => a < b ? a : b;
        public static int Abs(int a) => a < 0 ? -a : a;
        public static long Abs(long a) => a < 0 ? -a : a;
    }
}
