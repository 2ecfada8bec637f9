using System;
#if !NANOFRAMEWORK
using System.IO;
#endif

namespace EdgeResNet.Runtime.Flash
{
    /// <summary>The runtime's only way to weights: read <c>destination.Length</c> bytes at <c>offset</c>.</summary>
    public interface IFlash
    {
        long Length { get; }
        void Read(long offset, Span<byte> destination);
    }

#if !NANOFRAMEWORK
    /// <summary>
    /// A flash whose bytes are addressable memory: a mapped file, an array, on a board a memory-mapped (XIP) QSPI flash.
    /// The engine unpacks weights straight from it instead of copying them into its packed buffer first.
    /// </summary>
    public interface IMappedFlash : IFlash
    {
        /// <summary>Bytes [offset, offset + length), valid while the flash is open; out of range is a <see cref="FlashImageException"/>.</summary>
        ReadOnlySpan<byte> Mapped(long offset, int length);
    }
#endif

    /// <summary>A flash image held in memory (tests, hosts).</summary>
    public sealed class MemoryFlash
#if NANOFRAMEWORK
        : IFlash
#else
        : IMappedFlash
#endif
    {
        readonly byte[] _bytes;
        public MemoryFlash(byte[] bytes) { _bytes = bytes; }
        public long Length => _bytes.Length;

        public void Read(long offset, Span<byte> destination)
        {
            Check(offset, destination.Length);
            new Span<byte>(_bytes, (int)offset, destination.Length).CopyTo(destination);
        }
#if !NANOFRAMEWORK

        public ReadOnlySpan<byte> Mapped(long offset, int length)
        {
            Check(offset, length);
            return new ReadOnlySpan<byte>(_bytes, (int)offset, length);
        }
#endif

        void Check(long offset, int length)
        {
            if (offset < 0 || length < 0 || offset > _bytes.Length - length) // written so a huge offset cannot overflow
                throw new FlashImageException($"read of {length} bytes at offset {offset} is outside the {_bytes.Length}-byte flash");
        }
    }

#if !NANOFRAMEWORK // nanoFramework boards read the SPI flash; its file system is a separate library
    /// <summary>
    /// A flash image in a file, never loaded whole: the file is mapped read-only (the host's counterpart of a
    /// memory-mapped QSPI/OSPI flash): a read copies its bytes out of the mapping into the caller's buffer, as a board's
    /// SPI read fills it, and the engine unpacks weights straight from the mapping (<see cref="IMappedFlash"/>). No system
    /// call per read: the engine makes thousands per frame. The mapped pages are
    /// the OS's page cache of the file, not memory the engine holds.
    /// </summary>
    public sealed unsafe class FileFlash : IMappedFlash, IDisposable
    {
        readonly System.IO.MemoryMappedFiles.MemoryMappedFile? _map; // none for an empty file (it cannot be mapped; every read is out of range)
        readonly System.IO.MemoryMappedFiles.MemoryMappedViewAccessor? _view;
        readonly byte* _bytes;
        readonly long _length; // an image does not change while it is open

        public FileFlash(string path)
        {
            if (!File.Exists(path)) throw new FileNotFoundException("flash image not found: " + path, path);
            using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1))
            {
                _length = file.Length;
                if (_length == 0) return;
                _map = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(file, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read,
                    System.IO.HandleInheritability.None, leaveOpen: false);
            }
            _view = _map.CreateViewAccessor(0, _length, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _bytes = p + _view.PointerOffset;
        }

        public long Length => _length;

        public void Read(long offset, Span<byte> destination) => Mapped(offset, destination.Length).CopyTo(destination);

        public ReadOnlySpan<byte> Mapped(long offset, int length)
        {
            if (offset < 0 || length < 0 || offset > _length - length)
                throw new FlashImageException($"read of {length} bytes at offset {offset} is outside the {_length}-byte image");
            return length == 0 ? default : new ReadOnlySpan<byte>(_bytes + offset, length);
        }

        public void Dispose()
        {
            if (_view == null) return;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map!.Dispose();
        }
    }
#endif

    /// <summary>A window [offset, offset + length) of another flash (an image slot, an image at an offset), read with offsets relative to its start.</summary>
    public sealed class FlashRegion : IFlash
    {
        public FlashRegion(IFlash flash, long offset, long length)
        {
            if (offset < 0 || length < 0 || offset + length > flash.Length)
                throw new ArgumentOutOfRangeException(nameof(offset), $"a region of {length} bytes at {offset} is outside the {flash.Length}-byte flash");
            Flash = flash; Offset = offset; Length = length;
        }

        public IFlash Flash { get; }
        public long Offset { get; }
        public long Length { get; }

        public void Read(long offset, Span<byte> destination)
        {
            // A FlashImageException, as MemoryFlash gives: a header pointing outside the region is a corrupt image.
            if (offset < 0 || offset + destination.Length > Length)
                throw new FlashImageException($"read of {destination.Length} bytes at offset {offset} is outside the {Length}-byte region at {Offset}");
            Flash.Read(Offset + offset, destination);
        }
    }

    /// <summary>
    /// Counts what passes through to another flash: the bytes read per frame figure. Every read goes through a copy;
    /// <see cref="Of"/> keeps a mapped flash mapped, so what it counts runs as the flash alone would.
    /// </summary>
    public class CountingFlash : IFlash
    {
        readonly IFlash _inner;
        public CountingFlash(IFlash inner) { _inner = inner; }
        public long BytesRead;
        public long Reads;
        public long Length => _inner.Length;

        /// <summary>A counting view of <paramref name="flash"/>, mapped where it is (bench, profile and eval time the engine's own path).</summary>
        public static CountingFlash Of(IFlash flash)
        {
#if !NANOFRAMEWORK
            if (flash is IMappedFlash mapped) return new CountingMappedFlash(mapped);
#endif
            return new CountingFlash(flash);
        }

        public void Read(long offset, Span<byte> destination)
        {
            _inner.Read(offset, destination);
            Count(destination.Length);
        }

        private protected void Count(int bytes)
        {
#if NANOFRAMEWORK
            BytesRead += bytes;
            Reads++;
#else
            System.Threading.Interlocked.Add(ref BytesRead, bytes); // an engine's threads read at once
            System.Threading.Interlocked.Increment(ref Reads);
#endif
        }
    }

#if !NANOFRAMEWORK
    /// <summary>A <see cref="CountingFlash"/> of a mapped flash: a mapped range counts as a read of its bytes.</summary>
    sealed class CountingMappedFlash : CountingFlash, IMappedFlash
    {
        readonly IMappedFlash _mapped;
        public CountingMappedFlash(IMappedFlash inner) : base(inner) { _mapped = inner; }

        public ReadOnlySpan<byte> Mapped(long offset, int length)
        {
            var bytes = _mapped.Mapped(offset, length);
            Count(length);
            return bytes;
        }
    }
#endif

    /// <summary>A flash image that is truncated, corrupt, of another version, or inconsistent; the message names the section.</summary>
    public sealed class FlashImageException : Exception
    {
        public FlashImageException(string message) : base(message) { }
    }
}
