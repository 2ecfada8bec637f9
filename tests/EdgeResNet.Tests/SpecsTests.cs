using EdgeResNet.Common;
using EdgeResNet.Device;
using EdgeResNet.Drivers.Frames;
using EdgeResNet.Common.Imaging;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Tests;

/// <summary>The board app's device strings: options come off the end, so paths may hold ',' and '@'.</summary>
[TestClass]
public sealed class SpecsTests
{
    [TestMethod]
    public void FolderOptionsComeOffTheEnd()
    {
        string samples = SampleImages.DirOrInconclusive();
        string dir = Directory.CreateTempSubdirectory("edgeresnet specs,2024,06@x-").FullName;
        try
        {
            // Two photos in a folder whose name has commas and an '@' (a temporary folder, not the repo).
            foreach (var f in Directory.EnumerateFiles(samples).Where(ImageFile.IsPhoto).Order(StringComparer.Ordinal).Take(2))
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            using (var plain = (ImageFolderSource)Specs.OpenCamera($"folder:{dir}"))
                Assert.AreEqual(PixelFormat.Rgb24, plain.Capture()!.Format);
            using (var yuyv = (ImageFolderSource)Specs.OpenCamera($"folder:{dir},yuyv,loop"))
            {
                for (int i = 0; i < 3; i++) Assert.AreEqual(PixelFormat.Yuyv, yuyv.Capture()!.Format, "loops past the end");
                StringAssert.Contains(yuyv.Description, "looping");
            }
            StringAssert.Contains(Assert.ThrowsExactly<EdgeResNet.Common.DeviceStringException>(() => Specs.OpenCamera($"folder:{dir},Rgb666")).Message, "unsupported pixel format 'Rgb666'");
        }
        finally { Directory.Delete(dir, true); }
    }

    [TestMethod]
    public void AnImageOffsetIsTheLastAt()
    {
        string dir = Directory.CreateTempSubdirectory("edgeresnet@chip-").FullName;
        try
        {
            string chip = Path.Combine(dir, "chip.bin");
            EdgeResNet.Flashing.SpiNor.SpiNorDevices.OpenEmulated(chip, create: true).Dispose(); // a chip the image is read from must exist
            using (var image = Specs.OpenImage($"emulated-nor:{chip}@0x100000"))
            {
                StringAssert.Contains(image.Description, "at offset 1048576");
                Assert.AreEqual(64L * 1024 * 1024 - 0x100000, image.Flash.Length);
            }
            Assert.IsFalse(File.Exists(chip + "@0x100000"), "the chip file is the path before the last '@'");
            StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => Specs.OpenImage($"emulated-nor:{chip}@99999999999")).Message, "outside");
            StringAssert.Contains(Assert.ThrowsExactly<UsageException>(() => Specs.OpenImage("slot:x")).Message, "unknown image location");
        }
        finally { Directory.Delete(dir, true); }
    }
}
