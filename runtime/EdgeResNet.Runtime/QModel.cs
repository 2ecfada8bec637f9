namespace EdgeResNet.Runtime
{
    /// <summary>How batch norm is represented: Kang's separate per-channel tables, or folded into the conv weights.</summary>
    public enum BnScheme : byte { Separate = 0, Folded = 1 }

    /// <summary>A quantised network: the input format and the layer table (see <see cref="QLayer"/>).</summary>
    public sealed class QModel
    {
        public int InputH, InputW, InputC, InputFrac, ActivationBits = 16;
        /// <summary>The nominal weight width (the header's); each conv layer stores its own, <see cref="QLayer.WeightBits"/>.</summary>
        public int WeightBits;
        public BnScheme Scheme;
        /// <summary>How a photo or camera frame becomes the input tensor (stored in the image header).</summary>
        public Input.InputPreprocessing Preprocessing = Input.InputPreprocessing.Caffe();
        public QLayer[] Layers = new QLayer[0];

        public QLayer Output => Layers[Layers.Length - 1];
        public int Classes => Output.OutC;
        public int InputSize => InputH * InputW * InputC;

        /// <summary>"10-bit", or "4..12-bit (mixed)" when the conv layers' widths differ.</summary>
        public string WeightWidths
        {
            get
            {
                int lo = 16, hi = 2;
                foreach (var l in Layers)
                    if (l.Op == QOp.Conv) { lo = (l.WeightBits < lo ? l.WeightBits : lo); hi = (l.WeightBits > hi ? l.WeightBits : hi); }
                return lo >= hi ? hi + "-bit" : lo + ".." + hi + "-bit (mixed)";
            }
        }

        public long Macs
        {
            get
            {
                long sum = 0;
                foreach (var l in Layers) sum += l.Macs;
                return sum;
            }
        }
    }
}
