namespace EdgeResNet.Runtime.Input
{
    /// <summary>The channel order of the network input.</summary>
    public enum ChannelOrder : byte { Rgb = 0, Bgr = 1 }

    /// <summary>
    /// How an RGB photo or camera frame becomes the network input: the shorter side resized to
    /// <see cref="ResizeShorterSide"/> (Pillow bilinear), a centre crop of <see cref="CropSize"/>, the
    /// channels in <see cref="Order"/>, minus the per-channel means. Stored in the flash image header
    /// (docs/flash-format.md), so the board preprocesses as the image was calibrated; defined here once.
    /// </summary>
    public sealed class InputPreprocessing
    {
        public int ResizeShorterSide, CropSize;
        public ChannelOrder Order;
        /// <summary>Per input channel, in the network's channel order, in thousandths of an 8-bit level.</summary>
        public int[] MeanMilli = new int[3];

        /// <summary>
        /// Keras "caffe" mode, as this ResNet-50 was trained: shorter side 256, centre crop 224, BGR, minus
        /// the ImageNet means (103.939, 116.779, 123.68). Smaller test networks keep all but the crop.
        /// </summary>
        public static InputPreprocessing Caffe(int cropSize = 224) => new InputPreprocessing
        {
            ResizeShorterSide = 256, CropSize = cropSize, Order = ChannelOrder.Bgr, MeanMilli = new[] { 103939, 116779, 123680 },
        };

        public bool SameAs(InputPreprocessing o) =>
            ResizeShorterSide == o.ResizeShorterSide && CropSize == o.CropSize && Order == o.Order
            && MeanMilli.Length == o.MeanMilli.Length && MeanMilli[0] == o.MeanMilli[0] && MeanMilli[1] == o.MeanMilli[1] && MeanMilli[2] == o.MeanMilli[2];

        public override string ToString() =>
            "shorter side " + ResizeShorterSide + ", centre crop " + CropSize + ", " + Order + ", means " + MeanMilli[0] + "/" + MeanMilli[1] + "/" + MeanMilli[2] + " thousandths";

        /// <summary>The network channel (0..2) that an R, G or B value (0, 1, 2) goes to.</summary>
        public int NetworkChannel(int rgbChannel) => Order == ChannelOrder.Bgr ? 2 - rgbChannel : rgbChannel;
    }
}
