using System.Runtime.CompilerServices;

// The tests set the protocol version the client speaks (a version-mismatch case needs it).
[assembly: InternalsVisibleTo("StarBridge.Tests")]
