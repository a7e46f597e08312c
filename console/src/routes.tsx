// Pages under /console/ (CONTRACT.md section 10). Every page but the login
// form needs the admin token; without one it sends the user to the login form
// and back to where they were going.
import { useEffect } from 'react';
import { createBrowserRouter, Link, Navigate, NavLink, Outlet, useLocation, useNavigate, useParams } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { clearToken, readToken } from './auth';
import { AudiencePage } from './pages/audience';
import { AudiencesPage } from './pages/audiences';
import { LoginPage } from './pages/login';
import { NewAudiencePage } from './pages/new-audience';
import { ProfilesPage } from './pages/profiles';
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
      <header className="topbar">
        <Link to="/spaces" className="brand">
          Engage console
        </Link>
        <SpaceNav />
        <button type="button" className="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>
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
      <NavLink to={`/spaces/${spaceId}/profiles`}>Profiles</NavLink>
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
        { path: '/spaces/:spaceId/audiences', element: <AudiencesPage /> },
        { path: '/spaces/:spaceId/audiences/new', element: <NewAudiencePage /> },
        { path: '/spaces/:spaceId/audiences/:id', element: <AudiencePage /> },
        { path: '/spaces/:spaceId/profiles', element: <ProfilesPage /> },
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
