namespace EdgeResNet.Runtime.Kernels
{
    /// <summary>
    /// Which part of a conv layer a kernel call computes, and where its buffers sit: output rows
    /// [OyStart, OyStart+OyCount) of channels [CoStart, CoStart+CoCount). The input buffer holds
    /// input rows from InRowBase on (all channels); the output buffer holds output rows from
    /// OutRowBase on, with channel CoStart at OutChannelBase and OutChannelStride values per pixel.
    /// </summary>
    public struct ConvTile
    {
        public int CoStart, CoCount, OyStart, OyCount, InRowBase, OutRowBase, OutChannelBase, OutChannelStride;

        /// <summary>The whole layer, whole tensors in and out.</summary>
        public static ConvTile Whole(QLayer l) => new ConvTile { CoCount = l.OutC, OyCount = l.OutH, OutChannelStride = l.OutC };

        public int OutIndex(QLayer l, int oy, int ox, int co) => ((oy - OutRowBase) * l.OutW + ox) * OutChannelStride + OutChannelBase + co - CoStart;
    }
}
