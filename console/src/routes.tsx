// Pages under /console/ (CONTRACT.md section 10). Every page but the login
// form needs the admin token; without one it sends the user to the login form
// and back to where they were going.
import { useEffect } from 'react';
import { createBrowserRouter, Link, Navigate, NavLink, Outlet, useLocation, useNavigate, useParams } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { clearToken, readToken } from './auth';
import { ComputationPage } from './pages/computation';
import { ComputationsPage } from './pages/computations';
import { LoginPage } from './pages/login';
import { EditComputationPage, NewComputationPage } from './pages/new-computation';
import { DestinationPage } from './pages/destination';
import { DestinationsPage } from './pages/destinations';
import { JourneyPage } from './pages/journey';
import { JourneysPage } from './pages/journeys';
import { ProfilesPage } from './pages/profiles';
import { SettingsPage } from './pages/settings';
import { SourcesPage } from './pages/sources';
import { SpacesPage } from './pages/spaces';

function SignedIn() {
  const location = useLocation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  useEffect(() => {
    const onSignedOut = () => {
      queryClient.clear();
      navigate('/login', { state: { from: location.pathname, expired: true } });
    };
    window.addEventListener('engage:signed-out', onSignedOut);
    return () => window.removeEventListener('engage:signed-out', onSignedOut);
  }, [navigate, location.pathname, queryClient]);
  if (!readToken()) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  const signOut = () => {
    clearToken();
    queryClient.clear();
    navigate('/login');
  };
  return (
    <>
      {/* Keyboard users skip the header's links to the page (shown when focused). */}
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/spaces" className="brand">
          Engage console
        </Link>
        <SpaceNav />
        <button type="button" className="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </>
  );
}

function SpaceNav() {
  const { spaceId } = useParams();
  if (!spaceId) return <nav aria-label="Sections" />;
  return (
    <nav aria-label="Sections">
      <NavLink to="/spaces" end>
        Spaces
      </NavLink>
      <NavLink to={`/spaces/${spaceId}/audiences`}>Audiences</NavLink>
      <NavLink to={`/spaces/${spaceId}/computed-traits`}>Computed traits</NavLink>
      <NavLink to={`/spaces/${spaceId}/journeys`}>Journeys</NavLink>
      <NavLink to={`/spaces/${spaceId}/destinations`}>Destinations</NavLink>
      <NavLink to={`/spaces/${spaceId}/profiles`}>Profiles</NavLink>
      <NavLink to={`/spaces/${spaceId}/sources`}>Sources</NavLink>
      <NavLink to={`/spaces/${spaceId}/settings`}>Settings</NavLink>
    </nav>
  );
}

export const router = createBrowserRouter(
  [
    { path: '/login', element: <LoginPage /> },
    {
      element: <SignedIn />,
      children: [
        { index: true, element: <Navigate to="/spaces" replace /> },
        { path: '/spaces', element: <SpacesPage /> },
        { path: '/spaces/:spaceId', element: <Navigate to="audiences" replace /> },
        ...(['audiences', 'computed-traits'] as const).flatMap((kind) => [
          { path: `/spaces/:spaceId/${kind}`, element: <ComputationsPage key={kind} kind={kind} /> },
          { path: `/spaces/:spaceId/${kind}/new`, element: <NewComputationPage key={kind} kind={kind} /> },
          { path: `/spaces/:spaceId/${kind}/:id`, element: <ComputationPage key={kind} kind={kind} /> },
          { path: `/spaces/:spaceId/${kind}/:id/edit`, element: <EditComputationPage key={kind} kind={kind} /> },
        ]),
        { path: '/spaces/:spaceId/profiles', element: <ProfilesPage /> },
        { path: '/spaces/:spaceId/sources', element: <SourcesPage /> },
        { path: '/spaces/:spaceId/journeys', element: <JourneysPage /> },
        { path: '/spaces/:spaceId/journeys/:id', element: <JourneyPage /> },
        { path: '/spaces/:spaceId/destinations', element: <DestinationsPage /> },
        { path: '/spaces/:spaceId/destinations/:id', element: <DestinationPage /> },
        { path: '/spaces/:spaceId/settings', element: <SettingsPage /> },
        {
          path: '*',
          element: (
            <p className="empty">
              No such page. <Link to="/spaces">Go to your spaces.</Link>
            </p>
          ),
        },
      ],
    },
  ],
  { basename: '/console' },
);
