import NIOCore

/// Appends JSON straight into a `ByteBuffer`, for responses on the hot path where encoding a
/// `JSON` tree would cost more than the work itself. Keys written with `rawKey` must need no
/// escaping (Aviary's key grammar guarantees that).
struct JSONWriter {
    var buffer: ByteBuffer

    init(capacity: Int = 1024) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    mutating func raw(_ s: StaticString) {
        buffer.writeStaticString(s)
    }

    mutating func raw(_ bytes: [UInt8]) {
        buffer.writeBytes(bytes)
    }

    /// A string known to need no escaping, in quotes.
    mutating func rawString(_ s: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeString(s)
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Any string, escaped per RFC 8259.
    mutating func string(_ s: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
            case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
            case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    mutating func optionalString(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }

    mutating func bool(_ b: Bool) {
        if b { raw("true") } else { raw("false") }
    }
}
