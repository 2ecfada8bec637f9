using System.Buffers.Binary;
using System.Security.Cryptography;
using EdgeResNet.Runtime.Flash;

namespace EdgeResNet.Common.Signing;

/// <summary>
/// The signature block appended to a flash image (docs/flash-format.md §8), 128 bytes. Bytes 0..63
/// are the manifest: magic "ERSIGN01", block size u32 (128), security counter u32, image length u64,
/// SHA-256 of the image bytes [0, length), key id (8 bytes). Bytes 64..127 are
/// the ECDSA P-256 signature (IEEE P1363: r then s, 32 bytes each) over SHA-256 of the manifest.
/// The manifest is what the host sends the loader before anything is erased.
/// </summary>
public sealed record SignatureBlock(uint SecurityCounter, long ImageLength, byte[] ImageSha256, byte[] KeyId, byte[] Signature)
{
    public const int Size = 128, ManifestSize = 64, SignatureSize = 64, KeyIdSize = 8;
    public static ReadOnlySpan<byte> Magic => "ERSIGN01"u8;

    public byte[] Encode()
    {
        var b = new byte[Size];
        EncodeManifest(SecurityCounter, ImageLength, ImageSha256, KeyId).CopyTo(b, 0);
        Signature.CopyTo(b, ManifestSize);
        return b;
    }

    public byte[] Manifest => EncodeManifest(SecurityCounter, ImageLength, ImageSha256, KeyId);

    internal static byte[] EncodeManifest(uint counter, long imageLength, byte[] sha256, byte[] keyId)
    {
        var m = new byte[ManifestSize];
        Magic.CopyTo(m);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), Size);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(12), counter);
        BinaryPrimitives.WriteUInt64LittleEndian(m.AsSpan(16), (ulong)imageLength);
        sha256.CopyTo(m, 24);
        keyId.CopyTo(m, 56);
        return m;
    }

    /// <summary>The block in <paramref name="b"/> (exactly <see cref="Size"/> bytes), or null with the reason it is not one.</summary>
    public static SignatureBlock? Decode(ReadOnlySpan<byte> b, out string reason)
    {
        reason = "";
        if (b.Length != Size) { reason = $"{b.Length} bytes where a {Size}-byte signature block belongs"; return null; }
        if (!b.StartsWith(Magic)) { reason = "no signature block (wrong magic)"; return null; }
        if (BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(8)) != Size) { reason = "a signature block of another size (another version?)"; return null; }
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(16));
        if (length > long.MaxValue) { reason = "a signature block with an impossible image length"; return null; }
        return new SignatureBlock(BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(12)), (long)length, b.Slice(24, 32).ToArray(),
            b.Slice(56, KeyIdSize).ToArray(), b.Slice(ManifestSize, SignatureSize).ToArray());
    }

    public string KeyIdHex => Convert.ToHexString(KeyId).ToLowerInvariant();
}

/// <summary>A public key the board trusts (a PEM SubjectPublicKeyInfo file, as `edgeresnet keys new` writes KEY.pub).</summary>
public sealed class TrustedKey
{
    readonly ECDsa _key;

    TrustedKey(ECDsa key, string source)
    {
        _key = key;
        Source = source;
        KeyId = ImageSigning.KeyIdOf(key);
    }

    public string Source { get; }
    public byte[] KeyId { get; }
    public string KeyIdHex => Convert.ToHexString(KeyId).ToLowerInvariant();

    public static TrustedKey Load(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"trusted key file not found: {path} (the public key `edgeresnet keys new --out KEY` wrote as KEY.pub)");
        return FromPem(File.ReadAllText(path), path);
    }

    /// <summary>A public key from PEM text; <paramref name="path"/> names it in messages.</summary>
    public static TrustedKey FromPem(string pem, string path)
    {
        if (pem.Contains("PRIVATE KEY", StringComparison.Ordinal))
            throw new UsageException($"{path} is a private key; a board needs only the public key (KEY.pub), and the private key must never leave the signing machine");
        var key = ImageSigning.ImportP256(pem, path, "public key", "give the KEY.pub file `edgeresnet keys new` wrote");
        return new TrustedKey(key, path);
    }

    public static IReadOnlyList<TrustedKey> LoadAll(IEnumerable<string> paths) => paths.Select(Load).ToList();

    /// <summary>Whether <paramref name="signature"/> is this key's ECDSA P-256 signature over SHA-256 of <paramref name="manifest"/>.</summary>
    public bool Verifies(byte[] manifest, byte[] signature) =>
        _key.VerifyData(manifest, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
}

/// <summary>A private signing key (PKCS#8 PEM, file mode 0600). It is never printed or logged; only its key id is.</summary>
public sealed class SigningKey : IDisposable
{
    readonly ECDsa _key;

    SigningKey(ECDsa key) { _key = key; KeyId = ImageSigning.KeyIdOf(key); }

    public byte[] KeyId { get; }
    public string KeyIdHex => Convert.ToHexString(KeyId).ToLowerInvariant();
    public string PublicKeyPem => _key.ExportSubjectPublicKeyInfoPem();

    public static SigningKey Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    public static SigningKey Load(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"signing key not found: {path}; make one with `edgeresnet keys new --out {path}`");
        var key = ImageSigning.ImportP256(File.ReadAllText(path), path, "private key", "give the file `edgeresnet keys new` wrote");
        try { key.ExportParameters(includePrivateParameters: true); }
        catch (CryptographicException)
        {
            key.Dispose();
            throw new UsageException($"{path} holds only a public key; signing needs the private key file (without .pub)");
        }
        return new SigningKey(key);
    }

    /// <summary>Writes the private key to <paramref name="path"/> (mode 0600, never over an existing file) and the public key to path + ".pub".</summary>
    public void Save(string path)
    {
        string pub = path + ".pub";
        foreach (var p in new[] { path, pub })
            if (File.Exists(p)) throw new UsageException($"{p} exists; a key is never overwritten (losing it would lock every board that trusts it). Choose another --out");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var w = new StreamWriter(new FileStream(path, options))) w.Write(_key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(pub, PublicKeyPem);
    }

    /// <summary>The signature block for an image of <paramref name="image"/> bytes with this counter.</summary>
    public SignatureBlock Sign(ReadOnlySpan<byte> image, uint securityCounter)
    {
        var sha = SHA256.HashData(image);
        var manifest = SignatureBlock.EncodeManifest(securityCounter, image.Length, sha, KeyId);
        var signature = _key.SignData(manifest, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return new SignatureBlock(securityCounter, image.Length, sha, KeyId, signature);
    }

    public void Dispose() => _key.Dispose();
}

/// <summary>Who signed an image, and its security counter (anti-rollback).</summary>
public readonly record struct SignatureCheck(string KeyId, uint SecurityCounter);

/// <summary>A missing, foreign, tampered or malformed signature: the image must not boot. Exit code 2.</summary>
public sealed class SignatureException(string message) : Exception(message);

/// <summary>Signing a packed image and checking one on the board.</summary>
public static class ImageSigning
{
    /// <summary>An ECDSA key from PEM text that must be on the NIST P-256 curve; any problem is a usage error naming <paramref name="path"/>.</summary>
    internal static ECDsa ImportP256(string pem, string path, string what, string hint)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.ExportParameters(includePrivateParameters: false).Curve.Oid?.Value != P256Oid)
                throw new UsageException($"{path}: an EC key on another curve; images are signed with ECDSA P-256 (NIST, secp256r1)");
            return key;
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            key.Dispose();
            throw new UsageException($"{path}: not a PEM {what} ({e.GetType().Name}); {hint}");
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    const string P256Oid = "1.2.840.10045.3.1.7";

    /// <summary>Key id: the first 8 bytes of SHA-256 over the public key's SubjectPublicKeyInfo (DER).</summary>
    public static byte[] KeyIdOf(ECDsa key) => SHA256.HashData(key.ExportSubjectPublicKeyInfo()).AsSpan(0, SignatureBlock.KeyIdSize).ToArray();

    /// <summary>Whether <paramref name="length"/> bytes are exactly the image, or the image and its signature block.</summary>
    public static bool IsImageOrSigned(long imageSize, long length) => length == imageSize || length == imageSize + SignatureBlock.Size;

    /// <summary>The signature block at the end of an image file, or null when the file is not signed (the image must open).</summary>
    public static SignatureBlock? ReadBlock(byte[] file) =>
        ReadBlock(new MemoryFlash(file), FlashImage.Open(new MemoryFlash(file), verifySections: false).ImageSize, out _);

    /// <summary>
    /// <paramref name="file"/> (an image, signed or not) with a new signature block: the image must open
    /// with every CRC; an existing block is replaced.
    /// </summary>
    public static byte[] Sign(byte[] file, SigningKey key, uint securityCounter)
    {
        var image = FlashImage.Open(new MemoryFlash(file), verifySections: true);
        long size = image.ImageSize;
        if (!IsImageOrSigned(size, file.Length))
            throw new FlashImageException($"{file.Length - size} bytes follow the {size:N0}-byte image, which is neither nothing nor a signature block");
        var body = file.AsSpan(0, (int)size);
        return [.. body, .. key.Sign(body, securityCounter).Encode()];
    }

    /// <summary>
    /// The block right after the image in <paramref name="region"/> (a file, a slot, or the rest of a chip),
    /// or null with the reason when there is none.
    /// </summary>
    public static SignatureBlock? ReadBlock(IFlash region, long imageSize, out string reason)
    {
        if (region.Length < imageSize + SignatureBlock.Size) { reason = "the image is not signed"; return null; }
        var b = new byte[SignatureBlock.Size];
        region.Read(imageSize, b);
        var block = SignatureBlock.Decode(b, out reason);
        if (block is null && !b.AsSpan().StartsWith(SignatureBlock.Magic)) reason = "the image is not signed (no signature block follows it)";
        return block;
    }

    /// <summary>
    /// Checks that the manifest in <paramref name="block"/> is signed by one of <paramref name="trust"/>
    /// (no image bytes are read): what the loader checks before it erases anything.
    /// </summary>
    public static SignatureCheck VerifyManifest(SignatureBlock block, IReadOnlyList<TrustedKey> trust)
    {
        var key = trust.FirstOrDefault(k => k.KeyId.AsSpan().SequenceEqual(block.KeyId))
            ?? throw new SignatureException($"signed by key {block.KeyIdHex}, which this board does not trust (it trusts {string.Join(", ", trust.Select(k => k.KeyIdHex))})");
        if (!key.Verifies(block.Manifest, block.Signature))
            throw new SignatureException($"the signature does not verify with key {key.KeyIdHex}: the manifest (image hash, length or counter) was changed after signing");
        return new SignatureCheck(key.KeyIdHex, block.SecurityCounter);
    }

    /// <summary>
    /// The whole check: the image in <paramref name="region"/> (<paramref name="imageSize"/> bytes, then its
    /// block) is signed by a trusted key and its bytes hash to what the signature covers. Reads the image once.
    /// </summary>
    public static SignatureCheck Verify(IFlash region, long imageSize, IReadOnlyList<TrustedKey> trust)
    {
        var block = ReadBlock(region, imageSize, out string reason)
            ?? throw new SignatureException($"{reason}; this board boots only images signed by {string.Join(", ", trust.Select(k => "key " + k.KeyIdHex))}: sign it with `edgeresnet sign IMG --key KEY --counter N`");
        if (block.ImageLength != imageSize)
            throw new SignatureException($"the signature covers {block.ImageLength:N0} bytes but the image is {imageSize:N0}");
        var check = VerifyManifest(block, trust);
        if (!HashOf(region, imageSize).AsSpan().SequenceEqual(block.ImageSha256))
            throw new SignatureException($"the image bytes do not hash to the signed SHA-256 (key {check.KeyId}): the image was changed after signing");
        return check;
    }

    /// <summary>SHA-256 of <paramref name="region"/> bytes [0, length), read in 64 KiB pieces.</summary>
    public static byte[] HashOf(IFlash region, long length)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        for (long at = 0; at < length;)
        {
            int n = (int)Math.Min(buffer.Length, length - at);
            region.Read(at, buffer.AsSpan(0, n));
            sha.AppendData(buffer, 0, n);
            at += n;
        }
        return sha.GetHashAndReset();
    }
}
