using System;

namespace StarBridge.Core
{
    /// <summary>
    /// The one exception type of the StarBridge core: a refused handshake, a malformed message, a
    /// frame ring that cannot be read. <see cref="Code"/> says which rule broke; <see cref="Field"/>
    /// names the offending field when there is one. Messages name the likely fix.
    /// </summary>
    public class StarBridgeException : Exception
    {
        public StarBridgeException(ErrorCode code, string message, string field = "", Exception inner = null)
            : base(message, inner)
        {
            Code = code;
            Field = field ?? "";
        }

        /// <summary>The error code (engine.proto ErrorCode) this failure maps to.</summary>
        public ErrorCode Code { get; private set; }

        /// <summary>The offending field's path, e.g. "hello.protocol"; empty when not about one field.</summary>
        public string Field { get; private set; }
    }
}
