using System.Runtime.InteropServices;

namespace EdgeResNet.Drivers.V4L2;

/// <summary>The libc calls the V4L2 source needs. errno is captured (SetLastError) and read with Marshal.GetLastPInvokeError.</summary>
internal static unsafe partial class Libc
{
    const string Lib = "libc";

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    /// <summary>ioctl(fd, request, arg). ioctl is variadic in C; on the supported 64-bit ABIs a pointer third argument is passed exactly as in a fixed-argument call.</summary>
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, nuint request, void* arg);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>mmap's failure value, (void*)-1.</summary>
    internal static readonly nint MapFailed = -1;

    /// <summary>The text of an errno value ("No such file or directory").</summary>
    internal static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
