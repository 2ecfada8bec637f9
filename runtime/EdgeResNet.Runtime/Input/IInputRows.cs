using System;

namespace EdgeResNet.Runtime.Input
{
    /// <summary>
    /// Network input rows made on demand (HWC, the image's input format): the engine asks for them in order, each row once
    /// per frame, as its first layer needs them, so a plan that streams its input never holds the whole input.
    /// </summary>
    public interface IInputRows
    {
        /// <summary>Writes input rows [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) into <paramref name="rows"/>.</summary>
        void WriteRows(int first, int count, Span<short> rows);
    }
}
