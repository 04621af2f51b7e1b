import Foundation
import Testing
@testable import SimjobHDF5

/// Files cross the language boundary both ways: h5py writes, simjob reads; simjob writes,
/// h5py reads, with identical values.
@Suite("HDF5 interop with h5py")
struct HDF5InteropTests {
    @Test("simjob reads what h5py writes: float32/64, int32/64, uint8, bool, string attributes")
    func readsH5pyFiles() throws {
        let folder = TemporaryFolder()
        let path = folder.file("from-h5py.hdf5")
        try python("""
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], "w") as f:
                f["f32"] = (np.arange(12, dtype="f4").reshape(4, 3) / 4)
                f["f64"] = (np.arange(12, dtype="f8").reshape(4, 3) / 3)
                f["i32"] = np.arange(-6, 6, dtype="i4").reshape(4, 3)
                f["i64"] = (np.arange(12, dtype="i8").reshape(4, 3) * 1000000007)
                f["u8"] = np.arange(12, dtype="u1").reshape(4, 3)
                f["flags"] = np.array([[True, False], [False, True]])
                g = f.create_group("deep/inner")
                g["v"] = np.ones((2, 2), dtype="f4")
                f.attrs["distance"] = "angular"                      # variable-length UTF-8, as h5py does
                f.attrs.create("fixed", np.bytes_("euclidean"))     # fixed-length, as old files have
                f.attrs["count"] = 42
                f.attrs["ratio"] = 0.25
                f.attrs["unicode"] = "d\\u00e9j\\u00e0 vu"
                f["f32"].attrs["note"] = "on a dataset"
            """, path)
        let file = try HDF5File.open(path)
        #expect(file.datasetPaths() == ["deep/inner/v", "f32", "f64", "flags", "i32", "i64", "u8"])
        let f32 = try file.dataset("f32")
        #expect(f32.elementType == .float32 && f32.shape == [4, 3])
        #expect(try f32.readAll(as: Float.self) == (0..<12).map { Float($0) / 4 })
        let f64 = try file.dataset("f64")
        #expect(f64.elementType == .float64)
        #expect(try f64.readAll(as: Double.self) == (0..<12).map { Double($0) / 3 })
        #expect(try f64.readAll(as: Float.self) == (0..<12).map { Float(Double($0) / 3) })
        #expect(try file.dataset("i32").readAll(as: Int32.self) == (-6..<6).map(Int32.init))
        #expect(try file.dataset("i32").readAll(as: Float.self) == (-6..<6).map(Float.init))
        let i64 = try file.dataset("i64")
        #expect(i64.elementType == .int64)
        #expect(try i64.readAll(as: Int64.self) == (0..<12).map { Int64($0) * 1_000_000_007 })
        #expect(try file.dataset("u8").readAll(as: Float.self) == (0..<12).map(Float.init))
        let flags = try file.dataset("flags")
        #expect(flags.elementType == .bool)
        #expect(try flags.readAll(as: UInt8.self) == [1, 0, 0, 1])
        // Block reads: rows 1..<3 only.
        var block = [Float](repeating: -1, count: 6)
        try block.withUnsafeMutableBufferPointer { try f32.readRows(1, 2, into: $0.baseAddress!) }
        #expect(block == (3..<9).map { Float($0) / 4 })

        #expect(try file.attribute("distance") == .string("angular"))
        #expect(try file.attribute("fixed") == .string("euclidean"))
        #expect(try file.attribute("count")?.intValue == 42)
        #expect(try file.attribute("ratio")?.doubleValue == 0.25)
        #expect(try file.attribute("unicode") == .string("déjà vu"))
        #expect(try file.attribute("missing") == nil)
        #expect(try f32.attribute("note") == .string("on a dataset"))
    }

    @Test("compressed chunks decode in parallel to exactly what h5py wrote", arguments: [true, false])
    func parallelChunkReading(shuffle: Bool) throws {
        let folder = TemporaryFolder()
        let path = folder.file("chunks.hdf5")
        // 1000 rows in chunks of 64 rows (the last one partial), gzip with and without shuffle,
        // plus a layout the parallel path does not take (chunks narrower than a row).
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(5).standard_normal((1000, 24)).astype("f4")
            with h5py.File(sys.argv[1], "w") as f:
                f.create_dataset("rows", data=x, chunks=(64, 24), compression="gzip", shuffle=sys.argv[2] == "1")
                f.create_dataset("narrow", data=x, chunks=(100, 8), compression="gzip")
                f.create_dataset("plain", data=x)
            """, path, shuffle ? "1" : "0")
        let file = try HDF5File.open(path)
        let expected = try file.dataset("plain").readAll(as: Float.self)
        for name in ["rows", "narrow"] {
            let dataset = try file.dataset(name)
            for (start, count) in [(0, 1000), (0, 1), (63, 2), (100, 777), (960, 40), (999, 1)] {
                var block = [Float](repeating: .nan, count: count * 24)
                try block.withUnsafeMutableBufferPointer { try dataset.readRowsParallel(start, count, into: $0.baseAddress!, threads: 3) }
                #expect(block == Array(expected[(start * 24)..<((start + count) * 24)]), "\(name) rows \(start)..<\(start + count)")
            }
        }
    }

    @Test("contiguous float32 rows read in parallel from the file equal HDF5's own read, with a user block, big-endian data and a file cut short")
    func parallelContiguousReading() throws {
        let folder = TemporaryFolder()
        let path = folder.file("contiguous.hdf5")
        // 40,000 x 32 values (5 MB, above the parallel minimum): contiguous in little and big
        // endian, in a file with a 512-byte user block that shifts every address.
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(6).standard_normal((40000, 32)).astype("f4")
            with h5py.File(sys.argv[1], "w", userblock_size=512) as f:
                f.create_dataset("little", data=x)
                f.create_dataset("big", data=x.astype(">f4"))
            """, path)
        let file = try HDF5File.open(path)
        let little = try file.dataset("little"), big = try file.dataset("big")
        let expected = try big.readAll(as: Float.self)
        // The little-endian set takes the parallel path; the big-endian one goes through HDF5.
        #expect(ContiguousReader(little) != nil && ContiguousReader(big) == nil)
        for (start, count) in [(0, 40000), (1, 39999), (12345, 20000), (39999, 1)] {
            for dataset in [little, big] {
                var block = [Float](repeating: .nan, count: count * 32)
                try block.withUnsafeMutableBufferPointer { try dataset.readRowsParallel(start, count, into: $0.baseAddress!, threads: 3) }
                #expect(block == Array(expected[(start * 32)..<((start + count) * 32)]), "rows \(start)..<\(start + count)")
            }
        }
        // The file cut short under an open handle: the parallel read comes back short and the
        // read goes through HDF5, whatever that makes of it; it never crashes or hangs.
        let cut = folder.file("cut.hdf5")
        try FileManager.default.copyItem(atPath: path, toPath: cut)
        let cutFile = try HDF5File.open(cut)
        let cutDataset = try cutFile.dataset("little")
        #expect(truncate(cut, off_t(4 << 20)) == 0)
        var viaHDF5 = [Float](repeating: 0, count: 40000 * 32), parallel = viaHDF5
        let shortRead = try #require(ContiguousReader(cutDataset)).read(0, 40000, into: &parallel, threads: 3)
        #expect(!shortRead)
        let direct = Result { try viaHDF5.withUnsafeMutableBufferPointer { try cutDataset.readRows(0, 40000, into: $0.baseAddress!) } }
        let split = Result { try parallel.withUnsafeMutableBufferPointer { try cutDataset.readRowsParallel(0, 40000, into: $0.baseAddress!, threads: 3) } }
        switch (direct, split) {
        case (.success, .success): #expect(parallel == viaHDF5)
        case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)")
        default: Issue.record("the parallel read of a cut file differs from HDF5's: \(direct) against \(split)")
        }
    }

    @Test("whole datasets compressed on several threads read back in h5py value for value, as HDF5's own writes do")
    func parallelChunkWriting() throws {
        let folder = TemporaryFolder()
        let path = folder.file("chunks-out.hdf5")
        let output = try AtomicOutputFile(path)
        // 70,001 x 10 int32 and float32 (2.8 MB: three chunks, the last one partial), 1-D
        // float64 and int64, and uint8 rows; the same int32 values once more through HDF5's
        // own path (written in two parts, which the parallel writer does not take).
        let rows = 70_001
        let ids = (0..<(rows * 10)).map { Int32(truncatingIfNeeded: ($0 &* 7919) % 1_000_003 - 500_000) }
        let floats = (0..<(rows * 10)).map { Float($0 % 9973) * 0.37 - 11 }
        let doubles = (0..<(rows * 5)).map { Double($0) * 1e-3 - 7 }
        let longs = (0..<(rows * 5)).map { Int64($0) << 20 }
        let bytes = (0..<(rows * 64)).map { UInt8($0 % 251) }
        // Datasets are closed (out of scope) before the file is committed.
        do {
            let idSet = try output.file.createDataset("ids", type: .int32, shape: [rows, 10])
            #expect(ParallelChunkWriter(idSet, elementSize: 4) != nil)
            try ids.withUnsafeBufferPointer { try idSet.writeRows(0, rows, from: $0.baseAddress!) }
            try output.file.write("floats", floats, shape: [rows, 10])
            try output.file.write("doubles", doubles, shape: [rows * 5])
            try output.file.write("longs", longs, shape: [rows * 5])
            try output.file.write("bytes", bytes, shape: [rows, 64])
            let serial = try output.file.createDataset("serial", type: .int32, shape: [rows, 10])
            try ids.withUnsafeBufferPointer {
                try serial.writeRows(0, 30_000, from: $0.baseAddress!)
                try serial.writeRows(30_000, rows - 30_000, from: $0.baseAddress! + 300_000)
            }
        }
        try output.commit()
        let report = try python("""
            import sys, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r")
            n = 70001
            i = np.arange(n * 10, dtype=np.int64)
            ok = [np.array_equal(f["ids"][:], ((i * 7919) % 1000003 - 500000).astype("i4").reshape(n, 10)),
                  np.array_equal(f["serial"][:], f["ids"][:]),
                  np.array_equal(f["floats"][:], ((i % 9973).astype("f4") * np.float32(0.37) - np.float32(11)).reshape(n, 10)),
                  np.array_equal(f["doubles"][:], np.arange(n * 5) * 1e-3 - 7),
                  np.array_equal(f["longs"][:], np.arange(n * 5, dtype="i8") << 20),
                  np.array_equal(f["bytes"][:], (np.arange(n * 64) % 251).astype("u1").reshape(n, 64)),
                  all(f[k].compression == "gzip" and f[k].shuffle for k in ["ids", "floats", "doubles", "longs", "bytes"])]
            print(" ".join("1" if x else "0" for x in ok))
            """, path)
        #expect(report.trimmingCharacters(in: .whitespacesAndNewlines) == "1 1 1 1 1 1 1")
    }

    @Test("h5py reads what simjob writes, value for value")
    func h5pyReadsSimjobFiles() throws {
        let folder = TemporaryFolder()
        let path = folder.file("from-simjob.hdf5")
        let output = try AtomicOutputFile(path)
        let floats = (0..<3000).map { Float($0) * 0.5 - 7 }
        try output.file.write("group/floats", floats, shape: [1000, 3])
        try output.file.write("ids", (0..<20).map { Int32($0 * 3 - 5) }, shape: [5, 4])
        try output.file.write("mask", (0..<7).map { UInt8($0 % 2) }, shape: [7])
        try output.file.write("wide", (0..<4).map { Int64($0) << 40 }, shape: [2, 2])
        try output.file.setAttribute("distance", .string("euclidean"))
        try output.file.setAttribute("k", .int(10))
        try output.file.setAttribute("seconds", .double(1.5))
        try output.file.setAttribute("method", .string("exact"), on: "group")
        try output.commit()
        let report = try python("""
            import sys, h5py, numpy as np
            f = h5py.File(sys.argv[1], "r")
            ok = []
            ok.append(np.array_equal(f["group/floats"][:], (np.arange(3000, dtype="f4") * 0.5 - 7).reshape(1000, 3)))
            ok.append(f["group/floats"].dtype == np.float32 and f["group/floats"].compression == "gzip")
            ok.append(np.array_equal(f["ids"][:], (np.arange(20, dtype="i4") * 3 - 5).reshape(5, 4)) and f["ids"].dtype == np.int32)
            ok.append(np.array_equal(f["mask"][:], np.arange(7) % 2) and f["mask"].dtype == np.uint8)
            ok.append(np.array_equal(f["wide"][:], (np.arange(4, dtype="i8") << 40).reshape(2, 2)))
            ok.append(f.attrs["distance"] == "euclidean" and isinstance(f.attrs["distance"], str))
            ok.append(int(f.attrs["k"]) == 10 and float(f.attrs["seconds"]) == 1.5)
            ok.append(f["group"].attrs["method"] == "exact")
            print(" ".join(str(bool(x)) for x in ok))
            """, path)
        #expect(report == Array(repeating: "True", count: 8).joined(separator: " "))
    }

    @Test("an abandoned output leaves nothing behind; a committed one replaces the old file")
    func atomicOutput() throws {
        let folder = TemporaryFolder()
        let path = folder.file("result.hdf5")
        do {
            let output = try AtomicOutputFile(path)
            try output.file.write("x", [Float(1)], shape: [1, 1])
            #expect(FileManager.default.fileExists(atPath: output.temporaryPath))
            #expect(!FileManager.default.fileExists(atPath: path))
            // Dropped without commit, as when an error unwinds a command.
        }
        #expect(folder.contents.isEmpty)
        let first = try AtomicOutputFile(path)
        try first.file.write("x", [Float(1)], shape: [1, 1])
        try first.commit()
        let second = try AtomicOutputFile(path)
        try second.file.write("x", [Float(2)], shape: [1, 1])
        #expect(try HDF5File.open(path, registerInput: false).dataset("x").readAll(as: Float.self) == [1])
        try second.commit()
        #expect(try HDF5File.open(path, registerInput: false).dataset("x").readAll(as: Float.self) == [2])
        #expect(folder.contents == ["result.hdf5"])
    }
}
