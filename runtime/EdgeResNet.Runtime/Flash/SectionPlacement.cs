namespace EdgeResNet.Runtime.Flash
{
    /// <summary>Where one layer's weights and BN sections sit in an image, and their CRC-32s (all zero for a layer without sections).</summary>
    public struct SectionPlacement
    {
        public long WeightsOffset, BnOffset;
        public uint WeightsCrc, BnCrc;
    }
}
