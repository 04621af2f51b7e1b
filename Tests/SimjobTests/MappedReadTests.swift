import Foundation
import Testing
import SimjobOperations
import SimjobHDF5
import SimjobAlgorithms
import SimjobCore

/// Large contiguous float32 sets are mapped from their file rather than read into new memory
/// (`VectorSource.mappedMatrix`): the rows must be the file's, writes must stay in the process,
/// and a file truncated under the mapping must end in one error line, not a crash.
@Suite("Sets mapped from their files")
struct MappedReadTests {
    /// 5,000 x 1,024 float32 (20 MB, above the mapping minimum) in a file with a 512-byte user
    /// block (row 0 is not page aligned), contiguous and, as a copy, chunked and compressed.
    func largeSet(_ path: String) throws {
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(11).standard_normal((5000, 1024)).astype("f4")
            with h5py.File(sys.argv[1], "w", userblock_size=512) as f:
                f.create_dataset("train", data=x)
                f.create_dataset("chunked", data=x, chunks=(500, 1024), compression="gzip", shuffle=True)
                f.attrs["distance"] = "angular"
            """, path)
    }

    @Test("a large contiguous set is mapped with the values HDF5 reads; writes to the rows never reach the file")
    func mappedRowsMatchTheFile() throws {
        let folder = TemporaryFolder()
        let path = folder.file("large.hdf5")
        try largeSet(path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let source = try VectorSource(DatasetReference(path: path, dataset: "train"), threads: 2)
        let expected = try HDF5File.open(path).dataset("train").readAll(as: Float.self)
        for range in [0..<5000, 17..<5000, 800..<5000] {
            let matrix = try source.readMatrix(range)
            #expect(matrix.mappedBytes > 0, "rows \(range) were read, not mapped")
            #expect(matrix.array == Array(expected[(range.lowerBound * 1024)..<(range.upperBound * 1024)]), "rows \(range)")
        }
        // Angular normalises the mapped rows in place: the copies are the process's own.
        let normalised = try source.readMatrix(0..<5000, metric: .angular)
        var norm = 0.0
        for j in 0..<1024 { norm += Double(normalised.row(4321)[j] * normalised.row(4321)[j]) }
        #expect(abs(norm - 1) < 1e-4)
        for index in stride(from: 0, to: 5000 * 1024, by: 997) { normalised.pointer[index] = 12345 }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        let again = try source.readMatrix(0..<5000)
        #expect(again.array == expected)
        // Sets the mapping cannot take are read as before, with the same values: chunked and
        // compressed storage, a block below the minimum.
        let chunked = try VectorSource(DatasetReference(path: path, dataset: "chunked"), threads: 2).readMatrix(0..<5000)
        #expect(chunked.mappedBytes == 0 && chunked.array == expected)
        let small = try source.readMatrix(0..<100)
        #expect(small.mappedBytes == 0 && small.array == Array(expected[0..<(100 * 1024)]))
    }

    @Test("a mapped set with a NaN row is refused with that row's number")
    func mappedRowsAreChecked() throws {
        let folder = TemporaryFolder()
        let path = folder.file("nan.hdf5")
        try python("""
            import sys, h5py, numpy as np
            x = np.random.default_rng(3).standard_normal((5000, 1024)).astype("f4")
            x[3210, 77] = np.nan
            with h5py.File(sys.argv[1], "w") as f:
                f["train"] = x
            """, path)
        let source = try VectorSource(DatasetReference(path: path, dataset: "train"), threads: 2)
        let error = #expect(throws: SimjobError.self) { try source.mappedMatrix(0..<5000) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("row 3210 "), "\(String(describing: error))")
    }

    @Test("a set truncated by another program while mapped ends the process with one error line naming it and status 1, not a crash")
    func truncatedUnderTheMapping() throws {
        let folder = TemporaryFolder()
        let path = folder.file("victim.hdf5"), bystanderPath = folder.file("bystander.hdf5")
        try largeSet(path)
        try largeSet(bystanderPath)
        var pipe: [Int32] = [0, 0]
        #expect(Glibc.pipe(&pipe) == 0)
        let matrix = try VectorSource(DatasetReference(path: path, dataset: "train"), threads: 2).readMatrix(0..<5000)
        // Mapped after the victim: the error must still name the file whose page faulted.
        let bystander = try VectorSource(DatasetReference(path: bystanderPath, dataset: "train"), threads: 2).readMatrix(0..<5000)
        #expect(matrix.mappedBytes > 0 && bystander.mappedBytes > 0)
        let child = fork()
        if child == 0 {
            // The child: only system calls and plain memory access from here on.
            dup2(pipe[1], 2)
            _ = truncate(path, 4096)
            var sum: Float = 0
            var index = 0
            while index < 5000 * 1024 {
                sum += matrix.pointer[index]
                index += 1024
            }
            _exit(sum.isNaN ? 3 : 2) // reached only if no SIGBUS was raised
        }
        close(pipe[1])
        var status: Int32 = 0
        waitpid(child, &status, 0)
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = read(pipe[0], &bytes, bytes.count)
        close(pipe[0])
        let message = String(decoding: bytes.prefix(max(count, 0)), as: UTF8.self)
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
        #expect(exited && code == 1, "child status \(status): \(message)")
        #expect(message.hasPrefix("error: \(path): the file was truncated") && message.split(separator: "\n").count == 1, "\(message)")
        #expect(bystander.pointer[0].isFinite)
    }
}
