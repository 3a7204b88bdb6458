/// The checkpoint each key picked with `POST /sdapi/v1/options`, which its later calls run as when
/// they name none. In the process for one gateway (`A1111Sessions`); in the database for replicas,
/// so that a client whose pick and generation reach different replicas gets the model it picked.
public protocol CheckpointChoices: Sendable {
    func checkpoint(of key: String) async -> String?
    func setCheckpoint(_ name: String, for key: String) async
}
