using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace EdgeResNet.Tests;

/// <summary>
/// The runtime must contain no floating point: this reads the compiled runtime assemblies (both
/// targets) and fails on any float/double opcode (ldc.r4, conv.r8, ...) and on any float or double
/// in a signature: fields, method parameters and returns, locals, and referenced members.
/// </summary>
[TestClass]
public sealed class IntegerOnlyTests
{
    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    static readonly HashSet<short> FloatOpcodes = [OpCodes.Ldc_R4.Value, OpCodes.Ldc_R8.Value, OpCodes.Conv_R4.Value, OpCodes.Conv_R8.Value,
        OpCodes.Conv_R_Un.Value, OpCodes.Ldind_R4.Value, OpCodes.Ldind_R8.Value, OpCodes.Stind_R4.Value, OpCodes.Stind_R8.Value,
        OpCodes.Ldelem_R4.Value, OpCodes.Ldelem_R8.Value, OpCodes.Stelem_R4.Value, OpCodes.Stelem_R8.Value, OpCodes.Ckfinite.Value];

    public static IEnumerable<object[]> RuntimeAssemblies()
    {
        string root = EdgeResNet.Tools.RepoPaths.FindRoot() ?? throw new InvalidOperationException("repository root not found");
        foreach (var tfm in new[] { "netstandard2.1", "net10.0" })
        {
            var dll = Directory.GetFiles(Path.Combine(root, "runtime", "EdgeResNet.Runtime", "bin"), "EdgeResNet.Runtime.dll", SearchOption.AllDirectories)
                .Where(p => p.Contains(Path.DirectorySeparatorChar + tfm + Path.DirectorySeparatorChar)).OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
            yield return [tfm, dll ?? ""];
        }
        yield return ["nanoFramework", NanoFrameworkBuild(root) ?? ""];
    }

    /// <summary>The same core source compiled against nanoFramework's mscorlib alone (runtime/nanoframework).</summary>
    static string? NanoFrameworkBuild(string root)
    {
        string bin = Path.Combine(root, "runtime", "nanoframework", "bin");
        return !Directory.Exists(bin) ? null : Directory.GetFiles(bin, "EdgeResNet.Runtime.NanoFramework.dll", SearchOption.AllDirectories)
            .OrderByDescending(File.GetLastWriteTimeUtc).FirstOrDefault();
    }

    [TestMethod]
    public void TheNanoFrameworkBuildReferencesNanoFrameworksMscorlibAloneAndHoldsTheWholeCore()
    {
        string root = EdgeResNet.Tools.RepoPaths.FindRoot()!;
        string? dll = NanoFrameworkBuild(root);
        Assert.IsNotNull(dll, "no nanoFramework build of the runtime; build the solution first");
        using var pe = new PEReader(File.OpenRead(dll));
        var md = pe.GetMetadataReader();
        var refs = md.AssemblyReferences.Select(h => md.GetAssemblyReference(h)).Select(r => $"{md.GetString(r.Name)} {r.Version}").ToList();
        string corlib = Directory.GetFiles(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages", "nanoframework.corelibrary", "1.17.11", "lib"), "mscorlib.dll").Single();
        var nfVersion = AssemblyName.GetAssemblyName(corlib).Version;
        CollectionAssert.AreEqual(new[] { $"mscorlib {nfVersion}" }, refs, "only nanoFramework's mscorlib");
        // The whole integer core is in it: arithmetic, reference kernels, image reader, plan, engine, preprocessing.
        var types = md.TypeDefinitions.Select(h => md.GetString(md.GetTypeDefinition(h).Name)).ToHashSet();
        foreach (var t in new[] { "FixedPoint", "ReferenceKernels", "ConvDispatch", "FlashImage", "BitPacking", "Crc32", "StreamingVerifier", "ExecutionPlan", "InferenceEngine", "FramePreprocessor", "MemoryFlash", "FlashRegion" })
            Assert.Contains(t, types);
        // The .NET-only SIMD kernels and the file reader stay out (FastConv's scratch sizes are in, so plans match everywhere).
        foreach (var t in new[] { "FastAdd", "FastPool", "FileFlash" })
            Assert.DoesNotContain(t, types);
    }

    [TestMethod]
    [DynamicData(nameof(RuntimeAssemblies))]
    public void RuntimeHasNoFloatingPoint(string tfm, string dll)
    {
        Assert.IsFalse(string.IsNullOrEmpty(dll), $"no {tfm} build of the runtime found; build the solution first");
        using var pe = new PEReader(File.OpenRead(dll));
        var md = pe.GetMetadataReader();
        var findings = new List<string>();
        var provider = new FloatFinder();

        foreach (var h in md.FieldDefinitions)
            if (md.GetFieldDefinition(h).DecodeSignature(provider, null)) findings.Add($"field {md.GetString(md.GetFieldDefinition(h).Name)}");
        foreach (var h in md.MemberReferences)
        {
            var m = md.GetMemberReference(h);
            bool hasFloat = m.GetKind() == MemberReferenceKind.Method
                ? Uses(m.DecodeMethodSignature(provider, null))
                : m.DecodeFieldSignature(provider, null);
            if (hasFloat) findings.Add($"reference to {md.GetString(m.Name)}");
        }
        foreach (var h in md.MethodDefinitions)
        {
            var method = md.GetMethodDefinition(h);
            string name = $"{md.GetString(md.GetTypeDefinition(method.GetDeclaringType()).Name)}.{md.GetString(method.Name)}";
            if (Uses(method.DecodeSignature(provider, null))) findings.Add($"signature of {name}");
            if (method.RelativeVirtualAddress == 0) continue;
            var body = pe.GetMethodBody(method.RelativeVirtualAddress);
            if (!body.LocalSignature.IsNil && md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(provider, null).Any(t => t))
                findings.Add($"locals of {name}");
            foreach (var op in Opcodes(body.GetILBytes()!))
                if (FloatOpcodes.Contains(op.Value)) findings.Add($"{op.Name} in {name}");
        }
        Assert.IsEmpty(findings, $"{tfm}: floating point in the runtime: {string.Join("; ", findings.Distinct().Take(20))}");
    }

    [TestMethod]
    public void TheScanFindsFloatingPointWhereThereIs()
    {
        // The tools assembly does use floats: the same scan must see them (the test can fail).
        var tools = typeof(EdgeResNet.Tools.Float.FloatOps).Assembly.Location;
        using var pe = new PEReader(File.OpenRead(tools));
        var md = pe.GetMetadataReader();
        int found = md.MethodDefinitions.Select(h => md.GetMethodDefinition(h)).Where(m => m.RelativeVirtualAddress != 0)
            .Sum(m => Opcodes(pe.GetMethodBody(m.RelativeVirtualAddress).GetILBytes()!).Count(op => FloatOpcodes.Contains(op.Value)));
        Assert.IsGreaterThan(10, found);
    }

    static bool Uses(MethodSignature<bool> s) => s.ReturnType || s.ParameterTypes.Any(t => t);

    static IEnumerable<OpCode> Opcodes(byte[] il)
    {
        for (int i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            yield return op;
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.ShortInlineR => 4,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
    }

    /// <summary>Decodes signatures to "does this mention float or double".</summary>
    sealed class FloatFinder : ISignatureTypeProvider<bool, object?>
    {
        public bool GetPrimitiveType(PrimitiveTypeCode c) => c is PrimitiveTypeCode.Single or PrimitiveTypeCode.Double;
        public bool GetTypeFromDefinition(MetadataReader r, TypeDefinitionHandle h, byte k) => false;
        public bool GetTypeFromReference(MetadataReader r, TypeReferenceHandle h, byte k)
        {
            var t = r.GetTypeReference(h);
            return r.GetString(t.Namespace) == "System" && r.GetString(t.Name) is "Single" or "Double" or "Decimal" or "Half";
        }
        public bool GetTypeFromSpecification(MetadataReader r, object? c, TypeSpecificationHandle h, byte k) => r.GetTypeSpecification(h).DecodeSignature(this, c);
        public bool GetSZArrayType(bool e) => e;
        public bool GetArrayType(bool e, ArrayShape s) => e;
        public bool GetByReferenceType(bool e) => e;
        public bool GetPointerType(bool e) => e;
        public bool GetPinnedType(bool e) => e;
        public bool GetGenericInstantiation(bool g, ImmutableArray<bool> a) => g || a.Any(x => x);
        public bool GetGenericMethodParameter(object? c, int i) => false;
        public bool GetGenericTypeParameter(object? c, int i) => false;
        public bool GetFunctionPointerType(MethodSignature<bool> s) => Uses(s);
        public bool GetModifiedType(bool m, bool u, bool r) => u;
    }
}
