using EdgeResNet.Drivers.Frames;
using EdgeResNet.Common.Imaging;
using System.Security.Cryptography;
using EdgeResNet.Tools;
using EdgeResNet.Tools.Imaging;

namespace EdgeResNet.Tests;

[TestClass]
public sealed class PreprocessingTests
{
    /// <summary>A 7x5 test pattern; the expected resizes below were produced by Pillow 9.4 Image.resize(size, Image.BILINEAR).</summary>
    static RgbImage Pattern()
    {
        var px = new byte[7 * 5 * 3];
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
            {
                int i = (y * 7 + x) * 3;
                px[i] = (byte)((x * 37 + y * 11) % 256);
                px[i + 1] = (byte)((x * 5 + y * 71) % 256);
                px[i + 2] = (byte)((x * x * 13 + y * 3) % 256);
            }
        return new RgbImage(7, 5, px);
    }

    [TestMethod]
    public void DownscaleBothAxesMatchesPillow() =>
        CollectionAssert.AreEqual(new byte[] { 43, 75, 20, 122, 86, 117, 201, 97, 153, 65, 136, 26, 144, 147, 123, 194, 158, 159 },
            PillowResize.Bilinear(Pattern(), 3, 2).Pixels);

    [TestMethod]
    public void VerticalOnlyMatchesPillow() =>
        CollectionAssert.AreEqual(new byte[]
        {
            5, 30, 1, 42, 35, 14, 79, 40, 53, 116, 45, 118, 153, 50, 209, 190, 55, 70, 227, 60, 213, 22, 142, 6, 59, 147, 19, 96, 152, 58, 133, 157, 123,
            170, 162, 214, 207, 167, 75, 244, 172, 218, 39, 107, 11, 76, 112, 24, 113, 117, 63, 150, 122, 128, 187, 127, 219, 224, 132, 80, 115, 137, 223,
        }, PillowResize.Bilinear(Pattern(), 7, 3).Pixels);

    [TestMethod]
    public void HorizontalOnlyMatchesPillow() =>
        CollectionAssert.AreEqual(new byte[]
        {
            19, 3, 8, 77, 10, 62, 145, 20, 155, 203, 27, 151, 30, 74, 11, 88, 81, 65, 156, 91, 158, 214, 98, 154, 41, 145, 14, 99, 152, 68, 167, 162, 161,
            225, 169, 157, 52, 216, 17, 110, 223, 71, 178, 233, 164, 236, 240, 160, 63, 31, 20, 121, 38, 74, 189, 48, 167, 113, 55, 163,
        }, PillowResize.Bilinear(Pattern(), 4, 5).Pixels);

    [TestMethod]
    public void UpscaleMatchesPillowAtKnownPixels()
    {
        var up = PillowResize.Bilinear(Pattern(), 12, 9);
        Assert.AreEqual(12 * 9 * 3, up.Pixels.Length);
        CollectionAssert.AreEqual(new byte[] { 0, 0, 0, 14, 2, 5, 35, 5, 12 }, up.Pixels[..9]);
        CollectionAssert.AreEqual(new byte[] { 53, 87, 92, 56, 170, 10, 58, 224 }, up.Pixels[^8..]);
    }

    [TestMethod]
    public void TensorIsBgrMinusMeans()
    {
        var crop = new RgbImage(1, 1, [200, 100, 50]);
        var t = CaffePreprocessing.ToTensor(crop);
        CollectionAssert.AreEqual(new[] { 50f - 103.939f, 100f - 116.779f, 200f - 123.68f }, t);
    }

    /// <summary>
    /// SHA-256 of the 224x224 RGB crop that Pillow 9.4 produces for sample photos
    /// (tools/scripts/pillow_crops.py): tiny, tall, square, huge and greyscale ones.
    /// </summary>
    [TestMethod]
    [DataRow("n01440764_tench.JPEG", "dd65d6d3503bc5a18ca3e027261095eb3e814596f84675e1004fb1e3cc453c9e")]
    [DataRow("n01871265_tusker.JPEG", "167e5a2da54339b54e84bd874240ab6893f2436c2ab7dacfda00d149a4029012")] // 75x56
    [DataRow("n03866082_overskirt.JPEG", "538d23fd1b6c0eec70cea722cc688f0ac4fc958e40a8cd0e3aef92b798286775")] // 68x121
    [DataRow("n02817516_bearskin.JPEG", "ad4f42c50377b50b1e86258d695b6463a58142192342309027e5645d160877b2")] // 95x95
    [DataRow("n02091032_Italian_greyhound.JPEG", "30992bbdfd7345f005e9e79d095332bb092fb192dcf1aefe239b1f7ab0b877c0")] // 2400x1600
    [DataRow("n03843555_oil_filter.JPEG", "be2ff8620dce4a6a19068cd4fd9cf602cd8cf5d151a23e8f59b949daf64e80af")]
    [DataRow("n03804744_nail.JPEG", "2d105056409c3cd30d0b74b256192807dd3d671f852c507b221419a974404013")] // greyscale
    [DataRow("n02692877_airship.JPEG", "e51bccc1f901b0f64fc62b241c68ea5ee9003ce6a3c343beaf12c188ca4e7bf3")] // greyscale
    public void SampleCropsEqualPillow(string file, string sha256)
    {
        var dir = SampleImages.DirOrInconclusive();
        var crop = CaffePreprocessing.ResizeAndCrop(RgbImage.Load(Path.Combine(dir, file)));
        Assert.AreEqual(sha256, Convert.ToHexStringLower(SHA256.HashData(crop.Pixels)));
    }

    [TestMethod]
    public void UnreadableFileIsAClearError()
    {
        string path = Path.Combine(Path.GetTempPath(), $"edgeresnet-not-an-image-{Guid.NewGuid():N}.jpg");
        File.WriteAllText(path, "this is text, not a JPEG");
        try
        {
            var e = Assert.ThrowsExactly<ImageDecodeException>(() => RgbImage.Load(path));
            StringAssert.Contains(e.Message, path);
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void TruncatedJpegIsAClearError()
    {
        var dir = SampleImages.DirOrInconclusive();
        string path = Path.Combine(Path.GetTempPath(), $"edgeresnet-truncated-{Guid.NewGuid():N}.jpg");
        var bytes = File.ReadAllBytes(Path.Combine(dir, "n01440764_tench.JPEG"));
        File.WriteAllBytes(path, bytes[..(bytes.Length / 3)]);
        try
        {
            var e = Assert.ThrowsExactly<ImageDecodeException>(() => RgbImage.Load(path));
            StringAssert.Contains(e.Message, "truncated");
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void MissingFileIsAClearError() =>
        StringAssert.Contains(Assert.ThrowsExactly<ImageDecodeException>(() => RgbImage.Load("/nonexistent.jpg")).Message, "not found");
}

static class SampleImages
{
    public static string DirOrInconclusive()
    {
        var dir = RepoPaths.SampleImages();
        if (dir == null) Assert.Inconclusive("../shared/imagenet-samples is not beside the repository");
        return dir!;
    }
}
