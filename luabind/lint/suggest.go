package lint

import "unicode/utf8"

// Closest returns the candidate nearest to name, to turn a typo into a
// "did you mean" hint. It needs an edit distance of at most 2 that is also
// shorter than name, so short names do not get arbitrary hints; ties go to
// the alphabetically first candidate so output is stable.
func Closest(name string, candidates []string) string {
	best, bestDist := "", 3
	n := utf8.RuneCountInString(name)
	for _, c := range candidates {
		if c == name || abs(utf8.RuneCountInString(c)-n) > 2 {
			continue
		}
		d := distance(name, c)
		if d < n && (d < bestDist || d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// distance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of adjacent characters each cost 1,
// since swapped letters are the commonest typo.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// Three rows suffice: the swap looks two rows back.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
