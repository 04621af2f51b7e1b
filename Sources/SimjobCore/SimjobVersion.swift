/// simjob's version, recorded in the files it writes that must be matched later (shard
/// manifests).
public enum SimjobVersion {
    public static let current = "0.15.0"
}
