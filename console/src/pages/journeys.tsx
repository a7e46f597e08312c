// Journeys are not in the API yet (CONTRACT.md section 9 is its own issue):
// the page says so instead of a dead link.
export function JourneysPage() {
  return (
    <section>
      <h1>Journeys</h1>
      <p className="empty">
        Journeys are not available in this version yet: the control plane has no journeys API. This page will list them, with users per
        step, once it does.
      </p>
    </section>
  );
}
