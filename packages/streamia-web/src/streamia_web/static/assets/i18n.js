// The app's two languages. Texts are written in English in the code and looked up here for
// Spanish; a text with no entry shows in English. The choice is remembered in the browser;
// without one the account's language, then the browser's, decides.

const KEY = 'streamia.lang';
export const LANGUAGES = [
  ['es', 'Español'],
  ['en', 'English'],
];

const ES = {
  Browse: 'Explorar',
  'My list': 'Mi lista',
  'My ratings': 'Mis valoraciones',
  Admin: 'Administración',
  Profile: 'Perfil',
  'Log out': 'Cerrar sesión',
  'Log in': 'Iniciar sesión',
  'Sign up': 'Registrarse',
  'API docs': 'Documentación de la API',
  Language: 'Idioma',
  'Browse movies': 'Explorar películas',
  Search: 'Buscar',
  'Search titles and descriptions…': 'Busca títulos y descripciones…',
  Category: 'Categoría',
  'All categories': 'Todas las categorías',
  'Sort by': 'Ordenar por',
  Newest: 'Más recientes',
  'Title A–Z': 'Título A–Z',
  'Top rated': 'Mejor valoradas',
  'Loading…': 'Cargando…',
  'No movies on this page. ': 'No hay películas en esta página. ',
  'Go to page 1': 'Ir a la página 1',
  'No movies match your search. ': 'Ninguna película coincide con tu búsqueda. ',
  'Clear filters': 'Quitar filtros',
  'The catalogue is empty.': 'El catálogo está vacío.',
  'Not rated yet': 'Sin valoraciones',
  '← Previous': '← Anterior',
  'Next →': 'Siguiente →',
  Email: 'Correo electrónico',
  Password: 'Contraseña',
  'Forgot your password?': '¿Olvidaste tu contraseña?',
  'Create an account': 'Crear una cuenta',
  'Logging in…': 'Entrando…',
  'Enter your email.': 'Escribe tu correo.',
  'Enter your password.': 'Escribe tu contraseña.',
  'Create your account': 'Crea tu cuenta',
  'First name': 'Nombre',
  'Last name': 'Apellidos',
  Age: 'Edad',
  'Confirm password': 'Confirma la contraseña',
  'Create account': 'Crear cuenta',
  'Creating account…': 'Creando la cuenta…',
  'Already have an account? ': '¿Ya tienes cuenta? ',
  'Required.': 'Obligatorio.',
  'Send reset link': 'Enviar enlace',
  'Sending…': 'Enviando…',
  'Back to log in': 'Volver a iniciar sesión',
  'Reset your password': 'Restablece tu contraseña',
  'New password': 'Nueva contraseña',
  'Confirm new password': 'Confirma la nueva contraseña',
  'Set new password': 'Guardar la nueva contraseña',
  'Password changed': 'Contraseña cambiada',
  'Log in with your new password': 'Inicia sesión con tu nueva contraseña',
  'Your profile': 'Tu perfil',
  Details: 'Datos',
  'Save changes': 'Guardar cambios',
  'Saving…': 'Guardando…',
  'Change password': 'Cambiar contraseña',
  'Current password': 'Contraseña actual',
  'Delete account': 'Eliminar la cuenta',
  'Delete my account': 'Eliminar mi cuenta',
  'Your password': 'Tu contraseña',
  'I understand this cannot be undone': 'Entiendo que no se puede deshacer',
  'The language of the emails Streamia sends you.': 'El idioma de los correos que te envía Streamia.',
  'Page not found': 'Página no encontrada',
  'Go to the catalogue': 'Ir al catálogo',
  Subtitles: 'Subtítulos',
  Off: 'Desactivados',
  Report: 'Denunciar',
  Reported: 'Denunciado',
  'Awaiting review': 'Pendiente de revisión',
  'Resume from {time}': 'Reanudar desde {time}',
  'Start over': 'Empezar de nuevo',
  'Continue watching': 'Seguir viendo',
  Trending: 'Tendencias',
  'Most watched': 'Lo más visto',
  Untitled: 'Sin título',
  'Cover of {title}': 'Portada de {title}',
  '{percent}% watched': '{percent} % visto',
  History: 'Historial',
  Remove: 'Quitar',
  'Removed from your history.': 'Quitada de tu historial.',
  'Show more': 'Ver más',
  'Clear history': 'Borrar el historial',
  'Clear your whole watch history?': '¿Borrar todo tu historial?',
  'Your history was cleared.': 'Tu historial se ha borrado.',
  'Nothing watched yet. ': 'Todavía no has visto nada. ',
  'Find something to watch': 'Busca algo que ver',
  Finished: 'Vista',
  'Stopped at {time} of {total}': 'Parada en {time} de {total}',
  Retry: 'Reintentar',
  'Loading your list…': 'Cargando tu lista…',
  'Your list is empty. ': 'Tu lista está vacía. ',
  'Browse the catalogue': 'Explora el catálogo',
  'Removed “{title}” from your list.': '«{title}» se ha quitado de tu lista.',
  'Added “{title}” to your list.': '«{title}» se ha añadido a tu lista.',
  'Edit note': 'Editar la nota',
  'Add note': 'Añadir una nota',
  'A note for this movie (leave empty to clear):': 'Una nota para esta película (déjala vacía para borrarla):',
  'Note saved.': 'Nota guardada.',
  'Added {date}': 'Añadida el {date}',
  'Loading your ratings…': 'Cargando tus valoraciones…',
  'You have not rated any movie yet. ': 'Todavía no has valorado ninguna película. ',
  'Change rating': 'Cambiar la valoración',
  'Rating updated.': 'Valoración actualizada.',
  'Rating removed.': 'Valoración eliminada.',
  'Rated {date}': 'Valorada el {date}',
  'A movie that is no longer available': 'Una película que ya no está disponible',
  Movie: 'Película',
  'Rating saved.': 'Valoración guardada.',
  'Comment reported.': 'Comentario denunciado.',
  'Comment posted.': 'Comentario publicado.',
  'Comment updated.': 'Comentario actualizado.',
  'Comment deleted.': 'Comentario eliminado.',
  'Comment hidden.': 'Comentario ocultado.',
  'Your rating was removed.': 'Tu valoración se ha eliminado.',
  'Post comment': 'Publicar comentario',
  'Posting…': 'Publicando…',
  'Write something first.': 'Escribe algo primero.',
  'Add a comment': 'Añade un comentario',
  ' to join the conversation.': ' para participar en la conversación.',
  'Show more comments': 'Ver más comentarios',
  Comments: 'Comentarios',
  'Loading comments…': 'Cargando comentarios…',
  'No comments yet. Be the first!': 'Todavía no hay comentarios. ¡Sé el primero!',
  'Remove my rating': 'Quitar mi valoración',
  'Delete this comment?': '¿Eliminar este comentario?',
  'Report this comment to the moderators?': '¿Denunciar este comentario a los moderadores?',
  'Your rating': 'Tu valoración',
  'A comment cannot be empty.': 'Un comentario no puede estar vacío.',
  'Edit your comment': 'Edita tu comentario',
  '♡ Add to my list': '♡ Añadir a mi lista',
  'Log in to save it to your list': 'Inicia sesión para guardarla en tu lista',
  'Edit movie': 'Editar la película',
  '← All movies': '← Todas las películas',
  'Loading movie…': 'Cargando la película…',
};

function initial() {
  const stored = localStorage.getItem(KEY);
  if (stored === 'es' || stored === 'en') return stored;
  try {
    const user = JSON.parse(localStorage.getItem('streamia.user') || 'null');
    if (user && (user.language === 'es' || user.language === 'en')) return user.language;
  } catch {
    // an unreadable stored user: fall back to the browser
  }
  return (navigator.language || 'en').toLowerCase().startsWith('es') ? 'es' : 'en';
}

let current = initial();
document.documentElement.lang = current;

/** The current language: 'es' or 'en'. */
export function language() {
  return current;
}

/** Switches the language (remembered in this browser). */
export function setLanguage(value) {
  current = value === 'es' ? 'es' : 'en';
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current;
}

/** `text` in the current language, with each `{name}` replaced by `vars[name]`. */
export function t(text, vars) {
  const translated = current === 'es' ? (ES[text] ?? text) : text;
  return vars ? translated.replace(/\{(\w+)\}/g, (whole, name) => String(vars[name] ?? whole)) : translated;
}
