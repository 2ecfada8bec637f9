namespace EdgeResNet.Common;

/// <summary>A device is missing, misconfigured or misbehaving; the message says which and what to do.</summary>
public class DeviceException(string message, Exception? inner = null) : Exception(message, inner);
