extension Interrogator {
    /// The label tables an interrogator ranks.
    public struct LabelTables: Sendable {
        /// "by X" and "inspired by X" for every artist.
        public let artists: LabelTable
        /// ~100k style and content modifiers.
        public let flavors: LabelTable
        /// Media ("a watercolor painting", …).
        public let mediums: LabelTable
        /// Art movements.
        public let movements: LabelTable
        /// Site names and "trending on …" phrases.
        public let trendings: LabelTable
        /// Labels for negative prompts.
        public let negative: LabelTable
        /// User tables, in the order given.
        public let custom: [LabelTable]
        /// How analyses title a table, by table name (the reference's "artist",
        /// "flavor", …); a table not listed is titled by its name.
        public var titles: [String: String] = [:]

        /// The tables best and fast mode draw flavors from, merged in the
        /// reference's order (artists, flavors, mediums, movements, trendings), then
        /// the user tables.
        public var merged: LabelTable { LabelTable(merging: [artists, flavors, mediums, movements, trendings] + custom) }
    }
}
