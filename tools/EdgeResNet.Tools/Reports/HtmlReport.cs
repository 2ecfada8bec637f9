using System.Globalization;
using System.Net;
using System.Text;
using EdgeResNet.Runtime;
using EdgeResNet.Tools.Evaluation;

namespace EdgeResNet.Tools.Reports;

/// <summary>What a report shows: the image's model and footprint, and what was measured on it (each optional part may be null).</summary>
public sealed record ReportData(string ImageName, QModel Model, FootprintReport Footprint, EvalReport? Accuracy, ValidationReport? Validation, SweepResult? Sweep)
{
    /// <summary>A second plan to show beside the main one, for another RAM budget (the demo's 1 MiB plan, report --ram-budget), with the boards as it sees them.</summary>
    public FootprintReport? SecondPlan { get; init; }
}

/// <summary>
/// One self-contained HTML file (inline CSS and SVG, nothing fetched): the model, the per-layer
/// table, the RAM plan and flash traffic per step, accuracy against float, board fit and, when
/// given, the bit-width curve. Key figures carry ids (image-bytes, runtime-ram, flash-per-frame,
/// top1, agreement, layers) so a browser test can find them.
/// </summary>
public static class HtmlReport
{
    /// <summary>Renders and writes atomically.</summary>
    public static void Write(string path, ReportData d) => AtomicFile.WriteAllText(path, Render(d));

    public static string Render(ReportData d)
    {
        var m = d.Model;
        var f = d.Footprint;
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>EdgeResNet report: ").Append(E(d.ImageName)).Append("</title><style>")
         .Append("body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}")
         .Append("table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}")
         .Append("td.l,th.l{text-align:left}.fig{font-weight:bold}.no{color:#b00}.yes{color:#070}svg text{font-size:10px}</style></head><body>");
        h.Append("<h1>EdgeResNet report: ").Append(E(d.ImageName)).Append("</h1>");

        h.Append("<h2>Model</h2><table>");
        Row(h, "flash image", $"<span id=\"image-bytes\" class=\"fig\">{N(f.ImageBytes)}</span> B");
        Row(h, "batch norm", m.Scheme == BnScheme.Separate ? "separate per-channel tables (Kang 2018)" : "folded into the weights");
        Row(h, "weights / activations", $"{m.WeightWidths} / {Quantization.Quantizer.DescribeActivations(m)}");
        Row(h, "layers", $"<span id=\"layers\">{m.Layers.Length}</span> ({m.Layers.Count(l => l.Op == QOp.Conv)} conv)");
        Row(h, "multiply-accumulates per frame", N(m.Macs));
        Row(h, "input", $"{m.InputH}x{m.InputW}x{m.InputC}, {E(m.Preprocessing.ToString())}");
        Row(h, "conv kernel (this machine)", E(f.Kernel));
        h.Append("</table>");

        h.Append("<h2>Accuracy against float</h2><table>");
        if (d.Accuracy is { } a)
        {
            Row(h, $"{a.Images} photos, {E(a.Engine ?? a.Model)}", $"top-1 <span id=\"top1\" class=\"fig\">{P(a.Top1)}</span>, top-5 {P(a.Top5)}" +
                (a.AgreementTop1 is double ag ? $", top-1 agreement with float <span id=\"agreement\" class=\"fig\">{P(ag)}</span>" : ""));
        }
        if (d.Validation is { } v)
            Row(h, $"validate: {v.Images} photos, {E(v.Engine)}", $"top-1 {P(v.Top1)}, top-5 {P(v.Top5)}, agreement {P(v.AgreementTop1)}; lowest layer SQNR {v.Layers.Min(l => l.SqnrDb):F1} dB, logits {v.Layers[^1].SqnrDb:F1} dB");
        if (d.Accuracy == null && d.Validation == null) Row(h, "not measured", "give photos to the report command");
        h.Append("</table>");

        h.Append("<h2>Memory and flash</h2>");
        PlanTable(h, f, "");
        h.Append("<p>The plan step by step: the tensor area its input and output use and its band scratch, against the runtime's RAM; below, the flash bytes each step read (every conv streams its weights once per band).</p>");
        Bars(h, f.Steps.Select(s => s.Name).ToList(), [f.Steps.Select(s => (double)s.TensorBytes).ToList(), f.Steps.Select(s => (double)s.ScratchBytes).ToList()],
            ["#4a78b5", "#e39a3b"], ["tensors", "band scratch"], f.RuntimeRamBytes, "runtime RAM", "ram-plan");
        Bars(h, f.Steps.Select(s => s.Name).ToList(), [f.Steps.Select(s => (double)s.FlashBytes).ToList()], ["#5a9e5a"], ["flash bytes read"], null, null, "flash-traffic");

        h.Append("<h2>Boards</h2>");
        Boards(h, f.Boards);
        if (d.SecondPlan is { } second)
        {
            h.Append($"<h2>The plan for {N(second.RamBudgetBytes)} B of RAM</h2>");
            PlanTable(h, second, "second-");
            Boards(h, second.Boards);
        }

        h.Append("<h2>Layers</h2><table><tr><th>#</th><th class=\"l\">layer</th><th class=\"l\">op</th><th>output</th><th>MACs</th><th>w bits.frac</th><th>in / out frac</th><th>BN mult</th><th>acc bits</th><th>flash bytes</th><th>SQNR dB</th></tr>");
        for (int i = 0; i < m.Layers.Length; i++)
        {
            var l = m.Layers[i];
            bool conv = l.Op == QOp.Conv;
            var sqnr = d.Validation?.Layers[i].SqnrDb;
            h.Append($"<tr><td>{i}</td><td class=\"l\">{E(l.Name)}</td><td class=\"l\">{l.Op}{(l.Relu ? "+ReLU" : "")}</td><td>{l.OutH}x{l.OutW}x{l.OutC}</td><td>{(conv ? N(l.Macs) : "")}</td>")
             .Append($"<td>{(conv ? $"{l.WeightBits}.{l.WeightFrac}" : "")}</td><td>{(l.Op == QOp.Add ? $"{l.InFrac},{l.In1Frac}" : $"{l.InFrac}")} / {l.OutFrac}</td>")
             .Append($"<td>{(conv ? (l.MultiplierBits == 0 ? "1" : $"{l.MultiplierBits}.{l.MultiplierFrac}") : "")}</td><td>{(conv ? $"{l.AccumulatorBits}" : "")}</td>")
             .Append($"<td>{(conv ? N(l.WeightsSize + l.BnSize) : "")}</td><td>{(sqnr is double q ? q.ToString("F1", CultureInfo.InvariantCulture) : "")}</td></tr>");
        }
        h.Append("</table>");

        if (d.Sweep is { } sw)
        {
            h.Append("<h2>Accuracy against weight bits</h2><p>Top-1 agreement with float on ").Append(sw.Images).Append(" photos, per BN scheme (").Append(E(sw.Engine ?? "")).Append(").</p>");
            Curve(h, sw);
        }
        h.Append("<p>Made by <code>edgeresnet report</code>; every figure above comes from the image and the runs named beside it.</p></body></html>");
        return h.ToString();
    }

    /// <summary>A plan's RAM, flash reads and what a run measured; its two key figures carry the ids <paramref name="idPrefix"/>runtime-ram and <paramref name="idPrefix"/>flash-per-frame.</summary>
    static void PlanTable(StringBuilder h, FootprintReport f, string idPrefix)
    {
        h.Append("<table>");
        Row(h, "runtime RAM (arena + buffers)", $"<span id=\"{idPrefix}runtime-ram\" class=\"fig\">{N(f.RuntimeRamBytes)}</span> B (arena {N(f.ArenaBytes)}: tensors {N(f.TensorAreaBytes)}, band scratch {N(f.ScratchBytes)}, im2col {N(f.Im2ColBytes)}; weight buffers {N(f.WeightBufferBytes)}; budget {N(f.RamBudgetBytes)})");
        if (f.PreprocessingBytes is long pre) Row(h, "board app RAM with camera frames", $"{N(f.DeviceRamBytes)} B (preprocessing {N(pre)}, frame buffer {N(f.FrameBufferBytes ?? 0)})");
        Row(h, "flash read per frame", $"<span id=\"{idPrefix}flash-per-frame\" class=\"fig\">{N(f.FlashBytesPerFrame)}</span> B = {f.FlashReadRatio.ToString("F3", CultureInfo.InvariantCulture)} x the image, in {N(f.FlashReadsPerFrame)} reads");
        Row(h, "measured here", $"engine heap {N(f.MeasuredEngineHeapBytes)} B, allocated per frame {N(f.MeasuredAllocatedPerFrameBytes)} B, one frame {f.MeasuredFrameMs.ToString("F0", CultureInfo.InvariantCulture)} ms");
        h.Append("</table>");
    }

    static void Boards(StringBuilder h, IReadOnlyList<BoardFit> boards)
    {
        h.Append("<table><tr><th class=\"l\">board</th><th class=\"l\">fits</th><th class=\"l\">what limits it</th></tr>");
        foreach (var b in boards)
            h.Append($"<tr><td class=\"l\" title=\"{E(b.Description)}\">{E(b.Board)}</td><td class=\"l {(b.Fits ? "yes" : "no")}\">{(b.Fits ? "yes" : "no")}</td><td class=\"l\">{E(b.Limit)}</td></tr>");
        h.Append("</table>");
    }

    static void Row(StringBuilder h, string name, string valueHtml) => h.Append($"<tr><th class=\"l\">{E(name)}</th><td class=\"l\">{valueHtml}</td></tr>");

    /// <summary>Stacked bars, one per step, with an optional reference line.</summary>
    static void Bars(StringBuilder h, IReadOnlyList<string> names, List<double>[] series, string[] colours, string[] legend, double? line, string? lineLabel, string id)
    {
        const int W = 1100, H = 240, Left = 70, Bottom = 70, Top = 20;
        int n = names.Count;
        double max = Enumerable.Range(0, n).Max(i => series.Sum(s => s[i]));
        if (line is double l) max = Math.Max(max, l);
        if (max <= 0) max = 1;
        double bw = (W - Left - 10.0) / Math.Max(1, n), plot = H - Bottom - Top;
        h.Append($"<svg id=\"{id}\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">");
        for (int k = 0; k <= 4; k++)
        {
            double y = Top + plot * (1 - k / 4.0);
            h.Append(F($"<line x1=\"{Left}\" x2=\"{W - 10}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{Left - 4}\" y=\"{y + 3}\" text-anchor=\"end\">{Bytes(max * k / 4)}</text>"));
        }
        for (int i = 0; i < n; i++)
        {
            double y = Top + plot, x = Left + i * bw + 1;
            for (int s = 0; s < series.Length; s++)
            {
                double hgt = plot * series[s][i] / max;
                y -= hgt;
                h.Append(F($"<rect x=\"{x}\" y=\"{y}\" width=\"{bw - 2}\" height=\"{hgt}\" fill=\"{colours[s]}\"><title>{E(names[i])} {legend[s]}: {N((long)series[s][i])} B</title></rect>"));
            }
            h.Append(F($"<text transform=\"translate({x + bw / 2},{Top + plot + 6}) rotate(60)\">{E(names[i])}</text>"));
        }
        if (line is double lv)
        {
            double y = Top + plot * (1 - lv / max);
            h.Append(F($"<line x1=\"{Left}\" x2=\"{W - 10}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#b00\" stroke-dasharray=\"4 3\"/><text x=\"{W - 12}\" y=\"{y - 3}\" text-anchor=\"end\" fill=\"#b00\">{E(lineLabel ?? "")} {N((long)lv)} B</text>"));
        }
        for (int s = 0; s < series.Length; s++)
            h.Append(F($"<rect x=\"{Left + 10 + 130 * s}\" y=\"4\" width=\"10\" height=\"10\" fill=\"{colours[s]}\"/><text x=\"{Left + 24 + 130 * s}\" y=\"13\">{E(legend[s])}</text>"));
        h.Append("</svg>");
    }

    /// <summary>Top-1 agreement against weight bits, one line per scheme.</summary>
    static void Curve(StringBuilder h, SweepResult r)
    {
        const int W = 600, H = 300, Left = 50, Bottom = 40, Top = 20, Right = 20;
        int lo = r.Rows.Min(x => x.WeightBits), hi = Math.Max(lo + 1, r.Rows.Max(x => x.WeightBits));
        double X(int b) => Left + (W - Left - Right) * (b - lo) / (double)(hi - lo);
        double Y(double a) => Top + (H - Top - Bottom) * (1 - a);
        h.Append($"<svg id=\"sweep-curve\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">");
        for (int k = 0; k <= 5; k++) h.Append(F($"<line x1=\"{Left}\" x2=\"{W - Right}\" y1=\"{Y(k / 5.0)}\" y2=\"{Y(k / 5.0)}\" stroke=\"#ddd\"/><text x=\"{Left - 4}\" y=\"{Y(k / 5.0) + 3}\" text-anchor=\"end\">{k * 20} %</text>"));
        for (int b = lo; b <= hi; b++) h.Append(F($"<text x=\"{X(b)}\" y=\"{H - Bottom + 14}\" text-anchor=\"middle\">{b}</text>"));
        string[] colours = ["#4a78b5", "#e39a3b", "#5a9e5a"];
        int c = 0;
        foreach (var g in r.Rows.GroupBy(x => x.Scheme))
        {
            var pts = string.Join(" ", g.OrderBy(x => x.WeightBits).Select(x => F($"{X(x.WeightBits)},{Y(x.AgreementTop1)}")));
            h.Append($"<polyline points=\"{pts}\" fill=\"none\" stroke=\"{colours[c % 3]}\" stroke-width=\"2\"/>");
            h.Append(F($"<text x=\"{W - Right - 4}\" y=\"{Top + 14 + 12 * c}\" text-anchor=\"end\" fill=\"{colours[c % 3]}\">{g.Key.ToString().ToLowerInvariant()}</text>"));
            c++;
        }
        h.Append(F($"<text x=\"{(W + Left) / 2}\" y=\"{H - 6}\" text-anchor=\"middle\">weight bits</text></svg>"));
    }

    static string E(string s) => WebUtility.HtmlEncode(s);
    static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    static string P(double v) => (v * 100).ToString("F2", CultureInfo.InvariantCulture) + " %";
    static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
    static string Bytes(double v) => v >= 1 << 20 ? (v / (1 << 20)).ToString("F1", CultureInfo.InvariantCulture) + " MiB" : v >= 1024 ? (v / 1024).ToString("F0", CultureInfo.InvariantCulture) + " KiB" : v.ToString("F0", CultureInfo.InvariantCulture) + " B";
}
