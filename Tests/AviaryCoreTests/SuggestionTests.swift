import Testing

@testable import AviaryCore

@Suite struct SuggestionTests {
    /// Levenshtein distances as published (Wikipedia's "kitten"/"sitting" and "flaw"/"lawn").
    @Test func distancesAreLevenshteins() {
        #expect(Suggestion.distance(Array("kitten"), Array("sitting")) == 3)
        #expect(Suggestion.distance(Array("flaw"), Array("lawn")) == 2)
        #expect(Suggestion.distance(Array(""), Array("abc")) == 3)
        #expect(Suggestion.distance(Array("same"), Array("same")) == 0)
    }

    @Test func aTypoGetsTheNearestNameAndAStrangerTheList() {
        #expect(Suggestion.nearest(to: "interal", among: ["internal", "beta-testers"]) == "internal")
        #expect(Suggestion.nearest(to: "endswith", among: AttributeOperator.names) == "ends_with")
        #expect(Suggestion.nearest(to: "ab", among: ["ba", "xy"]) == nil)  // too short to guess
        #expect(Suggestion.hint(for: "interal", among: ["internal"]) == " (did you mean \"internal\"?)")
        #expect(Suggestion.hint(for: "zzz", among: ["b", "a"]) == " (one of: a, b)")
        #expect(Suggestion.hint(for: "zzz", among: [String]()) == "")
    }
}
