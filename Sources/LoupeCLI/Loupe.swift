import ArgumentParser

@main
struct Loupe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loupe", abstract: "Values diamonds.")
}
