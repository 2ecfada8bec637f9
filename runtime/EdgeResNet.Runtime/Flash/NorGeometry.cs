namespace EdgeResNet.Runtime.Flash
{
    /// <summary>
    /// The geometry of the SPI NOR chips this project targets (W25Q, MX25L, MT25QL, IS25LP), named
    /// once: the image aligns its sections to it, the driver, its emulation, the sector writer, the
    /// A/B slots and the loader protocol work in it.
    /// </summary>
    public static class NorGeometry
    {
        /// <summary>Programming granularity: one page program command writes at most this.</summary>
        public const int PageSize = 256;
        /// <summary>The smallest erase (4 KiB sector erase, 0x20/0x21).</summary>
        public const int SectorSize = 4096;
        /// <summary>The large erase (64 KiB block erase, 0xD8/0xDC).</summary>
        public const int BlockSize = 64 * 1024;
    }
}
