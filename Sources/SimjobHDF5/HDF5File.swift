import CHDF5
@_exported import SimjobCore
import Foundation


/// Runs once per process: HDF5 prints its own error stack on every failed call (including probes
/// such as "does this link exist"); simjob reports problems in its own words instead.
private let silenceHDF5Errors: Void = {
    sj_silence_errors()
}()

/// An open HDF5 file.
///
/// Debian's HDF5 is the serial build, which is not thread-safe: use a file (and its datasets)
/// from one thread at a time. The engine reads blocks on one thread and computes on others.
public final class HDF5File: @unchecked Sendable {
    /// The path messages name: the file's own, or for an output being written, the output's
    /// final name (not its temporary one).
    public let path: String
    /// The path on disk.
    public let diskPath: String
    let id: hid_t
    let writable: Bool
    private var isOpen = true

    private init(path: String, id: hid_t, writable: Bool, displayPath: String? = nil) {
        self.path = displayPath ?? path
        self.diskPath = path
        self.id = id
        self.writable = writable
    }

    deinit { close() }

    /// Opens an existing file read-only (or read-write), telling apart a missing file, a file that
    /// is not HDF5, a file another process holds locked for writing, a truncated file, and an HDF5
    /// file that cannot be opened for another reason (corrupt). A file opened read-only is
    /// remembered as an input of this process (`InputRegistry`), so no output can replace it.
    public static func open(_ path: String, writable: Bool = false, displayPath: String? = nil, registerInput: Bool = true) throws -> HDF5File {
        _ = silenceHDF5Errors
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT { throw SimjobError("\(path): no such file") }
            throw SimjobError("\(path): cannot open: \(String(cString: strerror(code)))")
        }
        let kind = info.st_mode & S_IFMT
        guard kind != S_IFDIR else { throw SimjobError("\(path): is a directory, not an HDF5 file") }
        guard kind == S_IFREG else { throw SimjobError("\(path): is not a regular file (a device, FIFO or socket), not an HDF5 file") }
        guard access(path, writable ? R_OK | W_OK : R_OK) == 0 else {
            throw SimjobError("\(path): permission denied")
        }
        if !writable && registerInput { InputRegistry.record(path) }
        let signature = H5Fis_hdf5(path)
        if signature == 0 { throw SimjobError("\(path): not an HDF5 file") }
        if signature < 0 {
            // H5Fis_hdf5 fails (rather than answering no) when the file cannot be read at all.
            let cause = HDF5Diagnosis.cause()
            throw SimjobError("\(path): cannot open HDF5 file: \(cause ?? "unreadable")")
        }
        let access = H5Pcreate(sj_H5P_FILE_ACCESS())
        defer { H5Pclose(access) }
        if writable { H5Pset_fclose_degree(access, H5F_close_degree_t(sj_H5F_CLOSE_STRONG())) }
        let id = H5Fopen(path, writable ? sj_H5F_ACC_RDWR() : sj_H5F_ACC_RDONLY(), access)
        guard id >= 0 else {
            let cause = HDF5Diagnosis.cause()
            if let cause, cause.hasPrefix("the file is") { throw SimjobError("\(path): \(cause)") }
            throw SimjobError("\(path): cannot open HDF5 file (corrupt\(cause.map { ": " + $0 } ?? ""))")
        }
        return HDF5File(path: path, id: id, writable: writable, displayPath: displayPath)
    }

    /// Creates (or truncates) a file. Outputs should go through `AtomicOutputFile` instead, so
    /// that they appear under their final name only when complete. Objects of a created file are
    /// closed with it ("strong" close), so `finish()` reports every write that failed.
    public static func create(_ path: String, displayPath: String? = nil) throws -> HDF5File {
        _ = silenceHDF5Errors
        let access = H5Pcreate(sj_H5P_FILE_ACCESS())
        defer { H5Pclose(access) }
        H5Pset_fclose_degree(access, H5F_close_degree_t(sj_H5F_CLOSE_STRONG()))
        errno = 0
        let id = H5Fcreate(path, sj_H5F_ACC_TRUNC(), sj_H5P_DEFAULT(), access)
        guard id >= 0 else {
            let code = errno
            throw SimjobError("\(displayPath ?? path): cannot create HDF5 file: \(HDF5Diagnosis.cause(fallbackErrno: code) ?? "unknown error")")
        }
        return HDF5File(path: path, id: id, writable: true, displayPath: displayPath)
    }

    /// Flushes and closes the file; later calls do nothing. For files read, where a failure to
    /// close loses nothing. Files written are closed with `finish()`, which reports failures.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        if writable { H5Fflush(id, H5F_SCOPE_GLOBAL) }
        H5Fclose(id)
        sj_clear_errors()
    }

    /// Flushes and closes a file being written, throwing when any of it could not be written
    /// (a full disk, an I/O error) with the cause. Open datasets are closed with the file.
    public func finish() throws {
        guard isOpen else { return }
        isOpen = false
        errno = 0
        let flushed = H5Fflush(id, H5F_SCOPE_GLOBAL)
        let flushErrno = errno
        let flushCause = flushed < 0 ? HDF5Diagnosis.cause(fallbackErrno: flushErrno) : nil
        errno = 0
        let closed = H5Fclose(id)
        let closeErrno = errno
        let closeCause = closed < 0 ? HDF5Diagnosis.cause(fallbackErrno: closeErrno) : nil
        if flushed < 0 || closed < 0 {
            throw SimjobError("\(path): cannot finish writing: \(flushCause ?? closeCause ?? "I/O error")")
        }
    }

    /// Whether an object (group or dataset) exists at a path such as `knn_graph/neighbors`.
    public func exists(_ objectPath: String) -> Bool {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, sj_H5P_DEFAULT()) <= 0 { return false }
        }
        return true
    }

    /// Whether the object at the path is a dataset (false for groups and missing paths).
    public func isDataset(_ objectPath: String) -> Bool {
        guard exists(objectPath) else { return false }
        let object = H5Oopen(id, objectPath, sj_H5P_DEFAULT())
        guard object >= 0 else { return false }
        defer { H5Oclose(object) }
        return H5Iget_type(object) == H5I_DATASET
    }

    /// Every dataset in the file, as paths relative to the root, depth-first in name order.
    public func datasetPaths() -> [String] {
        var result: [String] = []
        collectDatasets(in: "/", into: &result)
        return result
    }

    private func collectDatasets(in group: String, into result: inout [String]) {
        let groupID = H5Gopen2(id, group, sj_H5P_DEFAULT())
        guard groupID >= 0 else { return }
        defer { H5Gclose(groupID) }
        var info = H5G_info_t()
        guard H5Gget_info(groupID, &info) >= 0 else { return }
        let names = namesByIndex(count: info.nlinks) { index, buffer, size in
            H5Lget_name_by_idx(groupID, ".", H5_INDEX_NAME, H5_ITER_INC, index, buffer, size, sj_H5P_DEFAULT())
        }
        for name in names {
            let full = group == "/" ? name : "\(group)/\(name)"
            let object = H5Oopen(id, full, sj_H5P_DEFAULT())
            guard object >= 0 else { continue }
            let kind = H5Iget_type(object)
            H5Oclose(object)
            if kind == H5I_DATASET {
                result.append(full)
            } else if kind == H5I_GROUP {
                collectDatasets(in: full, into: &result)
            }
        }
    }

    /// Opens a dataset, with errors that name the file and the dataset.
    public func dataset(_ name: String) throws -> HDF5Dataset {
        guard exists(name) else { throw SimjobError("\(path): no dataset '\(name)'") }
        guard isDataset(name) else {
            // A link that exists but leads nowhere: a dangling soft link or a broken external one.
            let object = H5Oopen(id, name, sj_H5P_DEFAULT())
            guard object >= 0 else {
                sj_clear_errors()
                throw SimjobError("\(path): '\(name)' is a link to nothing (a dangling soft link, or an external link to a missing file)")
            }
            H5Oclose(object)
            throw SimjobError("\(path): '\(name)' is a group, not a dataset")
        }
        let datasetID = H5Dopen2(id, name, sj_H5P_DEFAULT())
        guard datasetID >= 0 else {
            let cause = HDF5Diagnosis.cause()
            throw SimjobError("\(path): cannot open dataset '\(name)' (corrupt file\(cause.map { ": " + $0 } ?? ""))")
        }
        let dataset = try HDF5Dataset(file: self, name: name, id: datasetID)
        try dataset.checkFiltersAvailable()
        return dataset
    }

    /// Creates the groups on the way to `objectPath` (`a/b/c` creates `a` and `a/b`).
    func createParentGroups(of objectPath: String) throws {
        let parts = objectPath.split(separator: "/").dropLast()
        var prefix = ""
        for part in parts {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, sj_H5P_DEFAULT()) > 0 { continue }
            // No modification times in object headers: the same content gives the same bytes.
            let groupProperties = H5Pcreate(sj_H5P_GROUP_CREATE())
            H5Pset_obj_track_times(groupProperties, false)
            defer { H5Pclose(groupProperties) }
            let group = H5Gcreate2(id, prefix, sj_H5P_DEFAULT(), groupProperties, sj_H5P_DEFAULT())
            guard group >= 0 else { throw SimjobError("\(path): cannot create group '\(prefix)'") }
            H5Gclose(group)
        }
    }

    /// Creates a group (and its parents) if it does not exist yet.
    public func createGroup(_ groupPath: String) throws {
        try createParentGroups(of: groupPath + "/_")
    }

    /// Creates a dataset of `shape` (rank 1 or 2) stored as `type`.
    ///
    /// Storage is chunked by rows (about 1 MiB a chunk) and deflate-compressed after a byte
    /// shuffle, which h5py and numpy read without any plugin.
    public func createDataset(
        _ name: String, type: StorageType, shape: [Int], compress: Bool = true
    ) throws -> HDF5Dataset {
        precondition(shape.count == 1 || shape.count == 2, "datasets are 1-D or 2-D")
        try createParentGroups(of: name)
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        guard space >= 0 else { throw SimjobError("\(path): cannot create dataspace for '\(name)'") }
        defer { H5Sclose(space) }
        let properties = H5Pcreate(sj_H5P_DATASET_CREATE())
        defer { H5Pclose(properties) }
        H5Pset_obj_track_times(properties, false)
        let rowElements = shape.count == 2 ? max(shape[1], 1) : 1
        if compress, shape[0] > 0, rowElements > 0 {
            let rowsPerChunk = max(1, min(shape[0], (1 << 20) / (rowElements * type.byteSize)))
            var chunk = [hsize_t(rowsPerChunk)]
            if shape.count == 2 { chunk.append(hsize_t(rowElements)) }
            H5Pset_chunk(properties, Int32(chunk.count), &chunk)
            H5Pset_shuffle(properties)
            H5Pset_deflate(properties, 1)
        }
        let linkProperties = H5Pcreate(sj_H5P_LINK_CREATE())
        defer { H5Pclose(linkProperties) }
        let datasetID = H5Dcreate2(id, name, type.fileType, space, linkProperties, properties, sj_H5P_DEFAULT())
        guard datasetID >= 0 else { throw SimjobError("\(path): cannot create dataset '\(name)'") }
        return try HDF5Dataset(file: self, name: name, id: datasetID)
    }

    /// Writes a whole small matrix (or vector) in one call.
    public func write<T: HDF5Scalar>(
        _ name: String, _ values: [T], shape: [Int], storage: StorageType? = nil
    ) throws {
        let dataset = try createDataset(name, type: storage ?? T.defaultStorage, shape: shape)
        guard !values.isEmpty else { return }  // an empty dataset: nothing to write
        try values.withUnsafeBufferPointer { buffer in
            try dataset.writeRows(0, shape[0], from: buffer.baseAddress!)
        }
    }

    // MARK: attributes

    public func attributes(of objectPath: String = "/") throws -> [(String, AttributeValue)] {
        try withObject(objectPath) { try HDF5Attributes.all(of: $0, where: describe(objectPath)) }
    }

    public func attribute(_ name: String, of objectPath: String = "/") throws -> AttributeValue? {
        try withObject(objectPath) { try HDF5Attributes.read(name, of: $0, where: describe(objectPath)) }
    }

    public func setAttribute(_ name: String, _ value: AttributeValue, on objectPath: String = "/") throws {
        try withObject(objectPath) { try HDF5Attributes.write(name, value, on: $0, where: describe(objectPath)) }
    }

    func describe(_ objectPath: String) -> String {
        objectPath == "/" || objectPath.isEmpty ? path : "\(path):\(objectPath)"
    }

    private func withObject<R>(_ objectPath: String, _ body: (hid_t) throws -> R) throws -> R {
        let target = objectPath.isEmpty ? "/" : objectPath
        if target != "/" && !exists(target) { throw SimjobError("\(path): no object '\(target)'") }
        let object = H5Oopen(id, target, sj_H5P_DEFAULT())
        guard object >= 0 else { throw SimjobError("\(path): cannot open '\(target)'") }
        defer { H5Oclose(object) }
        return try body(object)
    }
}

/// Names of the `count` members of something HDF5 lists by index (links, attributes).
/// `getName(index, buffer, size)` is an HDF5 `*_get_name_by_idx` call: with a nil buffer it
/// returns the name's length.
func namesByIndex(count: hsize_t, _ getName: (hsize_t, UnsafeMutablePointer<CChar>?, Int) -> Int) -> [String] {
    var names: [String] = []
    for index in 0..<count {
        let length = getName(index, nil, 0)
        guard length > 0 else { continue }
        var buffer = [CChar](repeating: 0, count: length + 1)
        _ = getName(index, &buffer, length + 1)
        names.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return names
}
