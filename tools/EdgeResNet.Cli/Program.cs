using System.CommandLine;
using EdgeResNet.Cli;
using Spectre.Console;

// Redirected output (logs, CI) gets full-width tables instead of 80 columns.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;

var root = new RootCommand(
    "EdgeResNet: a pretrained ImageNet ResNet-50 packed into fixed point for small boards.\n" +
    "Data flow: fetch-weights -> import (TF.js) -> float reference -> calibrate + pack (flash image) -> runtime -> logits.\n" +
    "Exit codes: 0 success, 1 bad command line, 2 bad input (missing or corrupt file, unreadable image), 3 weights or tools unavailable, 4 a measured figure below its target, 5 a device missing or failing.");
foreach (var command in Commands.All()) root.Subcommands.Add(command);
return root.Parse(args).Invoke();
