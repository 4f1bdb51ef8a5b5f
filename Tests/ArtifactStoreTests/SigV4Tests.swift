import Crypto
import Foundation
import Testing
@testable import S3Store

/// The signer against AWS's published examples: the four of the S3 API reference ("Examples:
/// Signature Calculations", examplebucket, 2013-05-24) and `get-vanilla` of the SigV4 test suite.
@Suite struct SigV4Tests {
    static let s3Example = SigV4Signer(
        credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    static let may24 = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    static let host = ("host", "examplebucket.s3.amazonaws.com")

    @Test func getObjectWithRange() {
        let signed = Self.s3Example.sign(
            method: "GET", path: "/test.txt", query: [], headers: [Self.host, ("range", "bytes=0-9")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: Self.may24)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(signed.stringToSign.hasSuffix("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"))
        #expect(signed.authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func putObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        #expect(SigV4Signer.hex(SHA256.hash(data: body)) == hash)
        let signed = Self.s3Example.sign(
            method: "PUT", path: "/" + SigV4Signer.uriEncode("test$file.text", keepSlash: true), query: [],
            headers: [Self.host, ("date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: hash, date: Self.may24)
        #expect(signed.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func getBucketLifecycle() {
        let signed = Self.s3Example.sign(
            method: "GET", path: "/", query: [("lifecycle", "")], headers: [Self.host],
            payloadHash: SigV4Signer.emptyPayloadHash, date: Self.may24)
        #expect(signed.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjects() {
        // Given out of order: the canonical query sorts them.
        let signed = Self.s3Example.sign(
            method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [Self.host],
            payloadHash: SigV4Signer.emptyPayloadHash, date: Self.may24)
        #expect(signed.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "max-keys=2&prefix=J")
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func suiteGetVanilla() {
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1", service: "service")
        let signed = signer.sign(
            method: "GET", path: "/", query: [], headers: [("host", "example.amazonaws.com")],
            payloadHash: SigV4Signer.emptyPayloadHash, date: Date(timeIntervalSince1970: 1_440_938_160),  // 2015-08-30T12:36:00Z
            addContentHashHeader: false)
        #expect(signed.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func sessionTokenIsSignedAndEncodingIsRFC3986() {
        var credentials = Self.s3Example.credentials
        credentials.sessionToken = "token/with+chars="
        let signed = SigV4Signer(credentials: credentials, region: "eu-west-1").sign(
            method: "GET", path: "/", query: [("continuation-token", "a/b+c="), ("list-type", "2")], headers: [Self.host],
            payloadHash: SigV4Signer.emptyPayloadHash, date: Self.may24)
        #expect(signed.headers.contains { $0.name == "x-amz-security-token" && $0.value == "token/with+chars=" })
        #expect(signed.authorization.contains("x-amz-security-token"))
        #expect(signed.canonicalRequest.contains("continuation-token=a%2Fb%2Bc%3D&list-type=2"))
        #expect(SigV4Signer.uriEncode("models/a b/ü~.json", keepSlash: true) == "models/a%20b/%C3%BC~.json")
        #expect(!"\(credentials)".contains(credentials.secretAccessKey) && !"\(credentials)".contains("token/with"))
    }
}

