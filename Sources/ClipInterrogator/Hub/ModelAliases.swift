import Foundation
import HuggingFaceHub

/// The model names clip-interrogator 0.6.0 accepts (open_clip's `ARCH/PRETRAINED`
/// for CLIP, its own `blip-*` names for captioners) and the Hugging Face
/// repositories that hold the same weights in `transformers` format.
///
/// The table works both ways: a reference name resolves to its repository, and
/// a repository maps back to the reference name, which names label-embedding
/// cache files so they interchange with the reference's
/// (`ViT-L-14_openai_flavors.safetensors`).
public enum ModelAliases {
    /// One reference name and its repository.
    public struct Alias: Sendable, Equatable {
        /// The name as clip-interrogator spells it (`ViT-L-14/openai`, `blip-large`).
        public let name: String
        /// The Hugging Face repository id (`openai/clip-vit-large-patch14`).
        public let repository: String
        /// What the model is for.
        public let kind: Kind
    }

    /// What a model is for.
    public enum Kind: Sendable, Equatable {
        /// A CLIP model (ranks labels).
        case clip
        /// A BLIP captioning model.
        case blip
    }

    /// The table.
    public static let all: [Alias] = [
        Alias(name: "ViT-L-14/openai", repository: "openai/clip-vit-large-patch14", kind: .clip),
        Alias(name: "ViT-B-32/openai", repository: "openai/clip-vit-base-patch32", kind: .clip),
        Alias(name: "ViT-B-16/openai", repository: "openai/clip-vit-base-patch16", kind: .clip),
        Alias(name: "ViT-L-14-336/openai", repository: "openai/clip-vit-large-patch14-336", kind: .clip),
        Alias(name: "ViT-H-14/laion2b_s32b_b79k", repository: "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", kind: .clip),
        Alias(name: "ViT-bigG-14/laion2b_s39b_b160k", repository: "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", kind: .clip),
        Alias(name: "blip-base", repository: "Salesforce/blip-image-captioning-base", kind: .blip),
        Alias(name: "blip-large", repository: "Salesforce/blip-image-captioning-large", kind: .blip),
    ]

    /// The repository of the reference name `name` (exact match first, then
    /// ignoring case), or nil if `name` is not in the table.
    public static func repository(for name: String) -> String? {
        alias(named: name)?.repository
    }

    /// The table entry for the reference name `name` (exact match first, then ignoring case).
    public static func alias(named name: String) -> Alias? {
        all.first { $0.name == name } ?? all.first { $0.name.lowercased() == name.lowercased() }
    }

    /// The reference name of `repository` (compared ignoring case, as the hub
    /// does), or nil if the repository is not in the table.
    public static func referenceName(forRepository repository: String) -> String? {
        all.first { $0.repository.lowercased() == repository.lowercased() }?.name
    }
}

extension RepositoryAliases {
    /// The reference's model names (``ModelAliases``), for a `ModelResolver` that
    /// accepts them beside directories and repository ids:
    /// `ModelResolver(environment: environment, aliases: .clipInterrogator)`.
    public static let clipInterrogator = RepositoryAliases(names: ModelAliases.all.map(\.name),
                                                          repository: ModelAliases.repository(for:))
}
