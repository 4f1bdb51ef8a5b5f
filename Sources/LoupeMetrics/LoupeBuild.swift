/// The version of Loupe this build is, as `loupe_build_info{version}` reports it (the server's
/// `LoupeVersion` and the gateway's version string are made from the same number).
public enum LoupeBuild {
    public static let version = "0.4.0"
}
