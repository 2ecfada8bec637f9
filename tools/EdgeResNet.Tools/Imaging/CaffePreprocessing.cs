using EdgeResNet.Runtime;
using EdgeResNet.Runtime.Input;

namespace EdgeResNet.Tools.Imaging;

/// <summary>
/// The reference preprocessing of this ResNet-50 (Keras "caffe" mode): shorter side to 256 with
/// Pillow's bilinear filter, centre crop 224x224, RGB to BGR, subtract the ImageNet BGR means.
/// Output is an HWC float tensor.
/// </summary>
public static class CaffePreprocessing
{
    /// <summary>The one definition, shared with the runtime and stored in every flash image.</summary>
    public static readonly InputPreprocessing Parameters = InputPreprocessing.Caffe();
    public static readonly int ResizeTo = Parameters.ResizeShorterSide;
    public static readonly int CropSize = Parameters.CropSize;
    /// <summary>Per network channel (B, G, R), as float32 (numpy subtracts them in float32); m / 1000f is the float nearest m thousandths.</summary>
    public static readonly float[] Means = Parameters.MeanMilli.Select(m => m / 1000f).ToArray();

    public static float[] Run(RgbImage image) => ToTensor(ResizeAndCrop(image));

    /// <summary>Refuses an image whose stored preprocessing is not the one this float path computes (photos would reach it wrongly prepared).</summary>
    public static void CheckMatches(QModel model)
    {
        if (!model.Preprocessing.SameAs(Parameters))
            throw new NotSupportedException($"the image asks for input preprocessing ({model.Preprocessing}); the tools' float path computes ({Parameters})");
    }

    /// <summary>Shorter side to 256 (the other side round(side*256/shorter), half to even as Python's round), centre 224 crop.</summary>
    public static RgbImage ResizeAndCrop(RgbImage image)
    {
        int shorter = Math.Min(image.Width, image.Height);
        int w = (int)Math.Round(image.Width * (double)ResizeTo / shorter, MidpointRounding.ToEven);
        int h = (int)Math.Round(image.Height * (double)ResizeTo / shorter, MidpointRounding.ToEven);
        var resized = PillowResize.Bilinear(image, w, h);
        int left = (w - CropSize) / 2, top = (h - CropSize) / 2;
        var crop = new byte[CropSize * CropSize * 3];
        for (int y = 0; y < CropSize; y++)
            resized.Pixels.AsSpan(((top + y) * w + left) * 3, CropSize * 3).CopyTo(crop.AsSpan(y * CropSize * 3));
        return new RgbImage(CropSize, CropSize, crop);
    }

    public static float[] ToTensor(RgbImage crop)
    {
        var t = new float[crop.Pixels.Length];
        int[] channel = [Parameters.NetworkChannel(0), Parameters.NetworkChannel(1), Parameters.NetworkChannel(2)]; // of R, G, B
        for (int i = 0; i < t.Length; i += 3)
            for (int c = 0; c < 3; c++)
                t[i + channel[c]] = crop.Pixels[i + c] - Means[channel[c]];
        return t;
    }
}
