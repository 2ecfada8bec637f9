using EdgeResNet.Tools.Model;
using EdgeResNet.Tools.Onnx.Proto;
using Google.Protobuf;

namespace EdgeResNet.Tools.Onnx;

/// <summary>
/// Writes the float network as a standard ONNX model (opset 13): input "input" NHWC float32
/// [N,H,W,C], transposed to NCHW; Conv, BatchNormalization (kept, not folded), Relu, Add, Pad,
/// MaxPool, GlobalAveragePool, Flatten, Gemm; outputs "logits" and "probabilities" (softmax).
/// </summary>
public static class OnnxExporter
{
    public const string InputName = "input";
    public const string LogitsName = "logits";
    public const string ProbabilitiesName = "probabilities";

    public static ModelProto Build(Network net)
    {
        var g = new GraphProto { Name = "resnet" };
        var s = net.Input.OutShape;
        g.Input.Add(TensorValue(InputName, ["N", s.H, s.W, s.C]));
        g.Output.Add(TensorValue(LogitsName, ["N", net.Classes]));
        g.Output.Add(TensorValue(ProbabilitiesName, ["N", net.Classes]));

        var names = new Dictionary<string, string> { [net.Input.Name] = "input_nchw" };
        g.Node.Add(Node("Transpose", [InputName], ["input_nchw"], net.Input.Name + "_to_nchw", Ints("perm", 0, 3, 1, 2)));
        foreach (var l in net.Layers.Skip(1))
        {
            string[] inputs = l.Inputs.Select(i => names[i]).ToArray();
            string output = l == net.Output ? LogitsName : l.Name;
            names[l.Name] = output;
            switch (l.Kind)
            {
                case LayerKind.ZeroPad:
                    g.Initializer.Add(Int64Tensor(l.Name + "_pads", [8], [0, 0, l.PadTop, l.PadLeft, 0, 0, l.PadBottom, l.PadRight]));
                    g.Node.Add(Node("Pad", [inputs[0], l.Name + "_pads"], [output], l.Name));
                    break;
                case LayerKind.Conv2D:
                {
                    int cin = net.ByName[l.Inputs[0]].OutShape.C, cout = l.OutShape.C;
                    g.Initializer.Add(FloatTensor(l.Name + "_W", [cout, cin, l.KernelH, l.KernelW], HwioToOihw(l.Kernel, l.KernelH, l.KernelW, cin, cout)));
                    g.Initializer.Add(FloatTensor(l.Name + "_B", [cout], l.Bias));
                    g.Node.Add(Node("Conv", [inputs[0], l.Name + "_W", l.Name + "_B"], [output], l.Name,
                        Ints("kernel_shape", l.KernelH, l.KernelW), Ints("strides", l.StrideH, l.StrideW),
                        Ints("pads", l.PadTop, l.PadLeft, l.PadBottom, l.PadRight)));
                    break;
                }
                case LayerKind.BatchNorm:
                    foreach (var (suffix, values) in new[] { ("_scale", l.Gamma), ("_bias", l.Beta), ("_mean", l.Mean), ("_var", l.Variance) })
                        g.Initializer.Add(FloatTensor(l.Name + suffix, [values.Length], values));
                    g.Node.Add(Node("BatchNormalization", [inputs[0], l.Name + "_scale", l.Name + "_bias", l.Name + "_mean", l.Name + "_var"], [output], l.Name,
                        new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = l.Epsilon }));
                    break;
                case LayerKind.Relu:
                    g.Node.Add(Node("Relu", inputs, [output], l.Name));
                    break;
                case LayerKind.Add:
                    // ONNX Add is binary: chain it for more inputs.
                    string acc = inputs[0];
                    for (int i = 1; i < inputs.Length; i++)
                    {
                        string o = i == inputs.Length - 1 ? output : $"{l.Name}_{i}";
                        g.Node.Add(Node("Add", [acc, inputs[i]], [o], i == inputs.Length - 1 ? l.Name : o));
                        acc = o;
                    }
                    break;
                case LayerKind.MaxPool:
                    g.Node.Add(Node("MaxPool", inputs, [output], l.Name,
                        Ints("kernel_shape", l.KernelH, l.KernelW), Ints("strides", l.StrideH, l.StrideW),
                        Ints("pads", l.PadTop, l.PadLeft, l.PadBottom, l.PadRight)));
                    break;
                case LayerKind.GlobalAvgPool:
                    g.Node.Add(Node("GlobalAveragePool", inputs, [l.Name + "_nc11"], l.Name));
                    g.Node.Add(Node("Flatten", [l.Name + "_nc11"], [output], l.Name + "_flatten", new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 }));
                    break;
                case LayerKind.Dense:
                    g.Initializer.Add(FloatTensor(l.Name + "_W", [l.Kernel.Length / l.OutShape.C, l.OutShape.C], l.Kernel));
                    g.Initializer.Add(FloatTensor(l.Name + "_B", [l.OutShape.C], l.Bias));
                    g.Node.Add(Node("Gemm", [inputs[0], l.Name + "_W", l.Name + "_B"], [output], l.Name));
                    break;
                default:
                    throw new NotSupportedException($"layer '{l.Name}': {l.Kind} has no ONNX export");
            }
        }
        if (net.Output.Kind != LayerKind.Dense) throw new NotSupportedException("the network must end in Dense");
        g.Node.Add(Node("Softmax", [LogitsName], [ProbabilitiesName], "softmax", new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = -1 }));

        var model = new ModelProto { IrVersion = 8, ProducerName = "edgeresnet", ProducerVersion = "1", Graph = g };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model;
    }

    /// <summary>Writes the model atomically (temporary file, then rename).</summary>
    public static void Save(Network net, string path)
    {
        var model = Build(net);
        AtomicFile.Write(path, model.WriteTo);
    }

    static float[] HwioToOihw(float[] k, int kh, int kw, int cin, int cout)
    {
        var r = new float[k.Length];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < cin; i++)
                    for (int o = 0; o < cout; o++)
                        r[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o];
        return r;
    }

    static NodeProto Node(string op, string[] inputs, string[] outputs, string name, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        return n;
    }

    static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length); // ONNX raw_data is little-endian, as this machine
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    static TensorProto Int64Tensor(string name, long[] dims, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        t.Int64Data.AddRange(values);
        return t;
    }

    static ValueInfoProto TensorValue(string name, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string p ? new TensorShapeProto.Types.Dimension { DimParam = p } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
