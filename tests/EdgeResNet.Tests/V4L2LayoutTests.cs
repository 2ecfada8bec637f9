using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using EdgeResNet.Common;
using EdgeResNet.Drivers.V4L2;

namespace EdgeResNet.Tests;

/// <summary>
/// The V4L2 source's struct layouts, ioctl numbers and constants against the kernel headers: a C program compiled with gcc
/// prints each value from &lt;linux/videodev2.h&gt; (and the libc headers), and every line must match <see cref="V4L2Abi.Layout"/>
/// and every entry of that table must be printed. There is no camera here, so streaming itself is not exercised.
/// </summary>
[TestClass]
public sealed class V4L2LayoutTests
{
    const string Program = """
        #include <stdio.h>
        #include <stddef.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <poll.h>
        #include <sys/mman.h>
        #include <sys/time.h>
        #include <linux/videodev2.h>

        #define SIZE(s) printf("sizeof.%s %lld\n", #s, (long long)sizeof(struct s))
        #define MEMBER_SIZE(s, f) printf("sizeof.%s.%s %lld\n", #s, #f, (long long)sizeof(((struct s *)0)->f))
        #define OFF(s, f) printf("%s.%s %lld\n", #s, #f, (long long)offsetof(struct s, f))
        #define VAL(c) printf("%s %lld\n", #c, (long long)(c))

        int main(void)
        {
            SIZE(v4l2_capability);
            OFF(v4l2_capability, driver); OFF(v4l2_capability, card); OFF(v4l2_capability, bus_info);
            OFF(v4l2_capability, version); OFF(v4l2_capability, capabilities); OFF(v4l2_capability, device_caps);
            MEMBER_SIZE(v4l2_capability, driver); MEMBER_SIZE(v4l2_capability, card); MEMBER_SIZE(v4l2_capability, bus_info);

            SIZE(v4l2_pix_format);
            OFF(v4l2_pix_format, width); OFF(v4l2_pix_format, height); OFF(v4l2_pix_format, pixelformat);
            OFF(v4l2_pix_format, field); OFF(v4l2_pix_format, bytesperline); OFF(v4l2_pix_format, sizeimage);
            OFF(v4l2_pix_format, colorspace);

            SIZE(v4l2_format);
            OFF(v4l2_format, type); OFF(v4l2_format, fmt.pix); MEMBER_SIZE(v4l2_format, fmt);

            SIZE(v4l2_fmtdesc);
            OFF(v4l2_fmtdesc, index); OFF(v4l2_fmtdesc, type); OFF(v4l2_fmtdesc, flags);
            OFF(v4l2_fmtdesc, description); OFF(v4l2_fmtdesc, pixelformat); MEMBER_SIZE(v4l2_fmtdesc, description);

            SIZE(v4l2_requestbuffers);
            OFF(v4l2_requestbuffers, count); OFF(v4l2_requestbuffers, type); OFF(v4l2_requestbuffers, memory);
            OFF(v4l2_requestbuffers, capabilities); OFF(v4l2_requestbuffers, flags);

            SIZE(timeval); OFF(timeval, tv_sec); OFF(timeval, tv_usec);

            SIZE(v4l2_timecode);
            OFF(v4l2_timecode, type); OFF(v4l2_timecode, flags); OFF(v4l2_timecode, frames); OFF(v4l2_timecode, seconds);
            OFF(v4l2_timecode, minutes); OFF(v4l2_timecode, hours); OFF(v4l2_timecode, userbits);

            SIZE(v4l2_buffer);
            OFF(v4l2_buffer, index); OFF(v4l2_buffer, type); OFF(v4l2_buffer, bytesused); OFF(v4l2_buffer, flags);
            OFF(v4l2_buffer, field); OFF(v4l2_buffer, timestamp); OFF(v4l2_buffer, timecode); OFF(v4l2_buffer, sequence);
            OFF(v4l2_buffer, memory); OFF(v4l2_buffer, m); OFF(v4l2_buffer, m.offset); OFF(v4l2_buffer, m.userptr);
            OFF(v4l2_buffer, m.fd); MEMBER_SIZE(v4l2_buffer, m); OFF(v4l2_buffer, length); OFF(v4l2_buffer, reserved2);
            OFF(v4l2_buffer, request_fd);

            SIZE(pollfd); OFF(pollfd, fd); OFF(pollfd, events); OFF(pollfd, revents);

            VAL(VIDIOC_QUERYCAP); VAL(VIDIOC_ENUM_FMT); VAL(VIDIOC_S_FMT); VAL(VIDIOC_REQBUFS); VAL(VIDIOC_QUERYBUF);
            VAL(VIDIOC_QBUF); VAL(VIDIOC_DQBUF); VAL(VIDIOC_STREAMON); VAL(VIDIOC_STREAMOFF);

            VAL(V4L2_PIX_FMT_RGB24); VAL(V4L2_PIX_FMT_BGR24); VAL(V4L2_PIX_FMT_RGB565); VAL(V4L2_PIX_FMT_YUYV);
            VAL(V4L2_PIX_FMT_GREY);
            VAL(V4L2_CAP_VIDEO_CAPTURE); VAL(V4L2_CAP_VIDEO_CAPTURE_MPLANE); VAL(V4L2_CAP_STREAMING); VAL(V4L2_CAP_DEVICE_CAPS);
            VAL(V4L2_BUF_TYPE_VIDEO_CAPTURE); VAL(V4L2_MEMORY_MMAP); VAL(V4L2_FIELD_NONE); VAL(V4L2_BUF_FLAG_ERROR);

            VAL(O_RDWR); VAL(O_NONBLOCK); VAL(O_CLOEXEC); VAL(PROT_READ); VAL(PROT_WRITE); VAL(MAP_SHARED);
            VAL(POLLIN); VAL(POLLERR); VAL(POLLHUP);
            VAL(ENOENT); VAL(EINTR); VAL(ENXIO); VAL(EAGAIN); VAL(EACCES); VAL(EBUSY); VAL(ENODEV); VAL(EINVAL); VAL(ENOTTY);
            return 0;
        }
        """;

    static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    static (int Code, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    [TestMethod]
    public void LayoutMatchesTheKernelHeadersBothWays()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("the V4L2 ABI exists on Linux only");
        if (!Environment.Is64BitProcess) Assert.Fail("the V4L2 source supports 64-bit processes only; run the tests as a 64-bit process");
        string? gcc = FindOnPath("gcc");
        if (gcc is null)
            Assert.Fail("gcc is not installed: this test compiles a C program against <linux/videodev2.h> to check the V4L2 " +
                "struct layouts and ioctl numbers. Install it (`sudo apt-get install gcc linux-libc-dev`); CI installs it.");

        var dir = Directory.CreateTempSubdirectory("edgeresnet-v4l2-").FullName;
        try
        {
            string source = Path.Combine(dir, "layout.c"), exe = Path.Combine(dir, "layout");
            File.WriteAllText(source, Program);
            var cc = Run(gcc, "-std=gnu11", "-Wall", "-Werror", "-o", exe, source);
            Assert.AreEqual(0, cc.Code, "gcc failed (is linux-libc-dev installed for <linux/videodev2.h>?):\n" + cc.Err);
            var run = Run(exe);
            Assert.AreEqual(0, run.Code, run.Err);

            var c = new Dictionary<string, long>();
            foreach (var line in run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int sp = line.LastIndexOf(' ');
                Assert.IsTrue(sp > 0, $"bad line from the C program: '{line}'");
                Assert.IsTrue(c.TryAdd(line[..sp], long.Parse(line[(sp + 1)..], CultureInfo.InvariantCulture)), $"C printed {line[..sp]} twice");
            }
            var cs = new Dictionary<string, long>();
            foreach (var (name, value) in V4L2Abi.Layout())
                Assert.IsTrue(cs.TryAdd(name, value), $"V4L2Abi.Layout() lists {name} twice");

            var problems = new List<string>();
            foreach (var (name, value) in c)
            {
                if (!cs.TryGetValue(name, out long mine)) problems.Add($"{name}: C prints {value}, but V4L2Abi.Layout() does not list it");
                else if (mine != value) problems.Add($"{name}: C says {value} (0x{value:x}), C# says {mine} (0x{mine:x})");
            }
            foreach (var name in cs.Keys.Where(n => !c.ContainsKey(n)))
                problems.Add($"{name}: listed by V4L2Abi.Layout() but not checked by the C program");
            Assert.AreEqual(0, problems.Count, string.Join("\n", problems));
            Assert.IsTrue(c.Count > 80, "the C program printed too few values");
        }
        finally { Directory.Delete(dir, true); }
    }

    [TestMethod]
    public void TheLayoutTableHasTheKnownLp64Values()
    {
        // A few values by hand, so a wrong table is caught even where gcc cannot run.
        var t = V4L2Abi.Layout().ToDictionary(e => e.Name, e => e.Value);
        Assert.AreEqual(104, t["sizeof.v4l2_capability"]);
        Assert.AreEqual(208, t["sizeof.v4l2_format"]);
        Assert.AreEqual(88, t["sizeof.v4l2_buffer"]);
        Assert.AreEqual(64, t["v4l2_buffer.m.offset"]);
        Assert.AreEqual(0xC0585611L, t["VIDIOC_DQBUF"]);
        Assert.AreEqual(0x40045612L, t["VIDIOC_STREAMON"]);
        Assert.AreEqual("YUYV", V4L2Abi.FourCCName((uint)t["V4L2_PIX_FMT_YUYV"]));
        Assert.AreEqual("RGBP", V4L2Abi.FourCCName((uint)t["V4L2_PIX_FMT_RGB565"]));
    }

    [TestMethod]
    public void AMissingCameraSaysSoAndHowToListCameras()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("V4L2 is Linux only");
        string path = Enumerable.Range(57, 40).Select(n => $"/dev/video{n}").First(p => !File.Exists(p));
        var e = Assert.ThrowsExactly<DeviceException>(() => new V4L2FrameSource(path, 320, 240));
        StringAssert.Contains(e.Message, $"no camera at {path} (");
        StringAssert.Contains(e.Message, "v4l2-ctl --list-devices");
    }

    [TestMethod]
    public void ADeviceThatIsNotV4L2IsRejectedClearly()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("V4L2 is Linux only");
        // /dev/null opens read-write but answers VIDIOC_QUERYCAP with ENOTTY.
        var e = Assert.ThrowsExactly<DeviceException>(() => new V4L2FrameSource("/dev/null"));
        StringAssert.Contains(e.Message, "/dev/null is not a V4L2 device");
    }
}
