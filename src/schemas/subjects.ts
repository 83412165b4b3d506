/**
 * Subject naming strategy: RecordNameStrategy. The subject of an event type
 * is its fully qualified record name (`io.mabeam.events.Bid`), whatever topic
 * carries it. One topic can then carry several event types (outcomes carries
 * RoundClosed, RoundOutcome and Rejection), a type keeps one evolution history
 * across topics, and topic prefixes (one per deployment or test) do not
 * multiply subjects.
 */
export function subjectFor(fullName: string): string {
  return fullName;
}
