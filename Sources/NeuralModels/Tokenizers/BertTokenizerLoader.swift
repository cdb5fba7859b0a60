import Foundation
import NeuralCore

// Reading a checkpoint directory's tokenizer files for `BertTokenizer`.

extension BertTokenizer {
    /// transformers 5.24's `PreTrainedTokenizerBase._from_pretrained` + `TokenizersBackend` file
    /// handling, reduced to what a `BertTokenizer` reads.
    enum Loader {
        struct Result {
            var vocabulary: [String]
            var configuration: BertTokenizer.Configuration
            var addedTokens: [BertTokenizer.AddedToken]
        }

        static func load(directory: URL) throws -> Result {
            let fm = FileManager.default
            func file(_ name: String) -> URL? {
                let url = directory.appendingPathComponent(name)
                return fm.fileExists(atPath: url.path) ? url : nil
            }
            let configURL = file("tokenizer_config.json")
            var config: [String: Any] = try configURL.map { try readObject($0) } ?? [:]
            let configPath = configURL?.path ?? directory.appendingPathComponent("tokenizer_config.json").path
            let tokenizerJSON: [String: Any]? = try file("tokenizer.json").map { try readObject($0) }

            // Vocabulary: tokenizer.json's model.vocab takes precedence (convert_to_native_format).
            let vocabulary: [String]
            if let model = tokenizerJSON?["model"] as? [String: Any], let vocab = model["vocab"] as? [String: Any] {
                // The id is the index into the vocabulary: ids past the entry count
                // would size the array from the file's numbers, not its contents.
                var byId = [String](repeating: "", count: vocab.count)
                for (token, value) in vocab {
                    guard let id = (value as? NSNumber)?.intValue, id >= 0 else { continue }
                    guard id < byId.count else {
                        throw BertTokenizerError.invalidConfiguration(
                            path: directory.appendingPathComponent("tokenizer.json").path, key: "model.vocab",
                            reason: "id \(id) of \"\(token)\" is past the \(vocab.count) entries")
                    }
                    byId[id] = token
                }
                vocabulary = byId
            } else if let url = file("vocab.txt") {
                vocabulary = try readVocabulary(url)
            } else {
                throw BertTokenizerError.missingVocabulary(directory: directory.path)
            }

            // V5: additional_special_tokens -> extra_special_tokens.
            if config["additional_special_tokens"] != nil && !isTruthy(config["extra_special_tokens"]) {
                config["extra_special_tokens"] = config.removeValue(forKey: "additional_special_tokens")
            }
            let roleKeys = Set(BertTokenizer.SpecialTokenRole.allCases.map { $0.rawValue + "_token" })
            // Model-specific named special tokens (`*_token` string keys outside the standard slots).
            var modelSpecific: [(String, Any)] = config
                .filter { !roleKeys.contains($0.key) && $0.key.hasSuffix("_token") && $0.value is String }
                .sorted { $0.key < $1.key }
                .map { ($0.key, $0.value) }
            if let dict = config["extra_special_tokens"] as? [String: Any] {
                modelSpecific += dict.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                config.removeValue(forKey: "extra_special_tokens")
            }

            var decoder: [Int: BertTokenizer.AddedToken] = [:]
            if let atd = config["added_tokens_decoder"] {
                guard let entries = atd as? [String: Any] else {
                    throw BertTokenizerError.invalidConfiguration(path: configPath, key: "added_tokens_decoder",
                                                                  reason: "not an object")
                }
                for (key, value) in entries {
                    guard let id = Int(key), let token = try addedToken(value, path: configPath, key: "added_tokens_decoder")
                    else {
                        throw BertTokenizerError.invalidConfiguration(path: configPath, key: "added_tokens_decoder",
                                                                      reason: "bad entry '\(key)'")
                    }
                    decoder[id] = token
                }
            } else {
                if let url = file("special_tokens_map.json") {
                    let map = try readObject(url)
                    for (key, value) in map {
                        if key == "extra_special_tokens", let list = value as? [Any] {
                            var existing = config["extra_special_tokens"] as? [Any] ?? []
                            for item in list {
                                var item = item
                                if var dict = item as? [String: Any] {
                                    dict["special"] = true
                                    item = dict
                                }
                                let content = try addedToken(item, path: url.path, key: key)?.content
                                let known = try existing.contains { try addedToken($0, path: url.path, key: key)?.content == content }
                                if !known { existing.append(item) }
                            }
                            config[key] = existing
                        } else if var dict = value as? [String: Any] {
                            dict["special"] = true
                            config[key] = dict
                        } else {
                            config[key] = value
                        }
                    }
                }
                if let url = file("added_tokens.json") {
                    var special = Set<String>()
                    for key in roleKeys {
                        if let token = try config[key].flatMap({ try addedToken($0, path: configPath, key: key) }) {
                            special.insert(token.content)
                        }
                    }
                    for item in config["extra_special_tokens"] as? [Any] ?? [] {
                        if let token = try addedToken(item, path: configPath, key: "extra_special_tokens") {
                            special.insert(token.content)
                        }
                    }
                    for (content, value) in try readObject(url) {
                        guard let id = (value as? NSNumber)?.intValue else {
                            throw BertTokenizerError.invalidConfiguration(path: url.path, key: content, reason: "id is not a number")
                        }
                        let isSpecial = special.contains(content)
                        decoder[id] = BertTokenizer.AddedToken(content, special: isSpecial, normalized: !isSpecial)
                    }
                }
                if let list = tokenizerJSON?["added_tokens"] as? [Any] {
                    for item in list {
                        guard let dict = item as? [String: Any], let id = (dict["id"] as? NSNumber)?.intValue,
                              let token = try addedToken(dict, path: "tokenizer.json", key: "added_tokens")
                        else { continue }
                        decoder[id] = token
                    }
                }
            }
            // PreTrainedTokenizerBase.__init__: a leftover additional_special_tokens becomes the extras.
            if config["extra_special_tokens"] == nil, let extra = config.removeValue(forKey: "additional_special_tokens") {
                config["extra_special_tokens"] = extra
            }

            var configuration = BertTokenizer.Configuration()
            configuration.doLowerCase = try bool(config, "do_lower_case", path: configPath) ?? true
            configuration.stripAccents = try bool(config, "strip_accents", path: configPath)
            configuration.tokenizeChineseChars = try bool(config, "tokenize_chinese_chars", path: configPath) ?? true
            configuration.cleanUpTokenizationSpaces = try bool(config, "clean_up_tokenization_spaces", path: configPath) ?? false
            for role in BertTokenizer.SpecialTokenRole.allCases {
                let key = role.rawValue + "_token"
                guard let value = config[key] else { continue }  // absent: BertTokenizer's default
                if var token = try addedToken(value, path: configPath, key: key) {
                    token.special = true
                    configuration.specialTokens[role] = token
                } else {
                    configuration.specialTokens[role] = nil
                }
            }
            var extras: [BertTokenizer.AddedToken] = []
            for (key, value) in modelSpecific {
                if var token = try addedToken(value, path: configPath, key: key) {
                    token.special = true
                    extras.append(token)
                }
            }
            for item in config["extra_special_tokens"] as? [Any] ?? [] {
                if let token = try addedToken(item, path: configPath, key: "extra_special_tokens") {
                    extras.append(token)
                }
            }
            configuration.extraSpecialTokens = extras

            let added = decoder.sorted { $0.key < $1.key }.map(\.value)
            return Result(vocabulary: vocabulary, configuration: configuration, addedTokens: added)
        }

        /// A string (special, not normalized) or an `AddedToken` object; `nil` for JSON null.
        static func addedToken(_ value: Any, path: String, key: String) throws -> BertTokenizer.AddedToken? {
            if value is NSNull { return nil }
            if let s = value as? String { return BertTokenizer.AddedToken(s, special: true) }
            guard let dict = value as? [String: Any], let content = dict["content"] as? String else {
                throw BertTokenizerError.invalidConfiguration(path: path, key: key, reason: "not a token string or object")
            }
            func flag(_ name: String) -> Bool? { (dict[name] as? NSNumber)?.boolValue }
            let special = flag("special") ?? false
            return BertTokenizer.AddedToken(
                content, special: special, normalized: flag("normalized") ?? !special,
                lstrip: flag("lstrip") ?? false, rstrip: flag("rstrip") ?? false, singleWord: flag("single_word") ?? false)
        }

        static func isTruthy(_ value: Any?) -> Bool {
            switch value {
            case nil, is NSNull: return false
            case let list as [Any]: return !list.isEmpty
            case let dict as [String: Any]: return !dict.isEmpty
            default: return true
            }
        }

        static func bool(_ config: [String: Any], _ key: String, path: String) throws -> Bool? {
            guard let value = config[key], !(value is NSNull) else { return nil }
            guard let number = value as? NSNumber else {
                throw BertTokenizerError.invalidConfiguration(path: path, key: key, reason: "not a boolean")
            }
            return number.boolValue
        }

        /// The bytes of a tokenizer file (a regular file of at most ``maximumTextFileBytes``).
        static func readFile(_ url: URL) throws -> Data {
            do {
                return try readRegularFile(url.path, limit: maximumTextFileBytes)
            } catch {
                throw BertTokenizerError.unreadableFile(path: url.path, reason: "\(error)")
            }
        }

        static func readObject(_ url: URL) throws -> [String: Any] {
            let data = try readFile(url)
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: data)
            } catch {
                throw BertTokenizerError.unreadableFile(path: url.path, reason: "invalid JSON: \(error)")
            }
            guard let dict = object as? [String: Any] else {
                throw BertTokenizerError.unreadableFile(path: url.path, reason: "not a JSON object")
            }
            return dict
        }

        /// `vocab.txt`: one token per line, the line number is the id.
        static func readVocabulary(_ url: URL) throws -> [String] {
            let data = try readFile(url)
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() }
            return lines.map { String(decoding: $0, as: UTF8.self) }
        }
    }
}
